"""Fixtures for dashboard tests: an organisation with a dataset, a finished job and a model,
made through the dashboard's own forms where a form exists."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from saas.jobs.models import JobEvent, TrainingJob
from saas.registry.models import TrainedModel
from tests.conftest import set_plan_limits, small_text_rows, text_csv


def browser(user) -> Client:
    c = Client(HTTP_ACCEPT="text/html")
    c.force_login(user)
    return c


def upload_csv(client: Client, data: bytes, name: str = "reviews.csv", **extra):
    f = io.BytesIO(data)
    f.name = name
    return client.post("/app/datasets/new", {"file": f, "task": "text-classification", **extra})


def finish(job: TrainingJob, classes=("negative", "positive")) -> TrainedModel:
    """Mark ``job`` succeeded with metrics and two epochs, and register its model row (what the
    worker would write; the worker itself is exercised by the e2e and browser tests)."""
    n = len(classes)
    metrics = {
        "accuracy": 0.75,
        "macro_f1": 0.74,
        "per_class": {
            c: {"precision": 0.7, "recall": 0.8, "f1": 0.75, "support": 4} for c in classes
        },
        "confusion_matrix": {
            "labels": list(classes),
            "matrix": [[3 if i == j else 1 for j in range(n)] for i in range(n)],
        },
    }
    for epoch in (1, 2):
        JobEvent.objects.for_tenant(job.organization_id).create(
            organization_id=job.organization_id,
            job=job,
            type="epoch",
            message=f"Epoch {epoch}/2",
            data={
                "epoch": epoch,
                "loss": 0.7 / epoch,
                "accuracy": 0.5 + 0.1 * epoch,
                "val_loss": 0.8 / epoch,
                "val_accuracy": 0.5 + 0.1 * epoch,
            },
        )
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        status="succeeded", epoch=2, metrics=metrics
    )
    return TrainedModel.objects.for_tenant(job.organization_id).create(
        organization_id=job.organization_id,
        job_id=job.pk,
        task=job.task,
        base_model=job.base_model,
        classes=list(classes),
        metrics=metrics,
        artifact_key="none",
        artifact_bytes=1234,
        artifact_sha256="0" * 64,
    )


class Workspace:
    """``acme`` (an ``Org`` with every role) with a dataset, a succeeded job and its model."""

    def __init__(self, org):
        self.org = org
        owner = browser(org.users["owner"])
        r = upload_csv(owner, text_csv(small_text_rows()))
        assert r.status_code == 302, r.content[:2000]
        self.dataset_id = r["Location"].rstrip("/").split("/")[-1]
        r = owner.post("/app/training/new", {"dataset": self.dataset_id, "epochs": 2})
        assert r.status_code == 302, r.content[:3000]
        self.job = TrainingJob.objects.for_tenant(org.org).get()
        self.model = finish(self.job)

    def client(self, role: str) -> Client:
        return browser(self.org.users[role])


@pytest.fixture
def workspace(acme, settings) -> Workspace:
    set_plan_limits(requests_per_key=10**6, requests_per_organization=10**6)
    return Workspace(acme)


def html(r) -> str:
    """The body of the test client's response ``r``, decoded as UTF-8."""
    return r.content.decode()


def named_file(data: bytes, name: str) -> io.BytesIO:
    """``data`` as a file called ``name``, for posting as an upload with the test client."""
    f = io.BytesIO(data)
    f.name = name
    return f
