"""Deleting a dataset deletes the validation examples its jobs copied out of it
(``TrainingJob.misclassified``), in the same transaction, and says so in the audit event."""

from __future__ import annotations

import io

import pytest

from saas.common.actor import Actor
from saas.datasets.services import dataset_create, dataset_delete
from saas.jobs.models import TrainingJob
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv

pytestmark = pytest.mark.django_db

EXAMPLE = {"input": "a secret sentence", "true_label": "a", "predicted_label": "b", "score": 0.9}


def _succeeded_job(org, name: str):
    from saas.jobs.services import training_job_create

    data = text_csv(small_text_rows())
    ds = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="text-classification",
        name=name,
        actor=Actor.system(),
    )
    job = training_job_create(organization=org, dataset=ds, actor=Actor.system())
    # A job that trained and copied one mistake (the state completion leaves it in).
    TrainingJob.objects.for_tenant(org).filter(pk=job.pk).update(
        status="succeeded", misclassified=[EXAMPLE]
    )
    return ds, job


def test_dataset_delete_removes_the_copied_examples(acme, globex):
    ds, job = _succeeded_job(acme.org, "d.csv")
    _, kept = _succeeded_job(acme.org, "other.csv")
    _, theirs = _succeeded_job(globex.org, "d.csv")
    client = acme.key()
    before = client.get(f"/v1/training-jobs/{job.pk}/misclassified").json()["data"]
    assert before == [EXAMPLE]

    assert client.delete(f"/v1/datasets/{ds.pk}").status_code == 204
    assert client.get(f"/v1/training-jobs/{job.pk}/misclassified").json()["data"] == []
    assert TrainingJob.objects.for_tenant(acme.org).get(pk=job.pk).misclassified == []
    # Another dataset's job, and another tenant's, keep theirs.
    assert TrainingJob.objects.for_tenant(acme.org).get(pk=kept.pk).misclassified == [EXAMPLE]
    assert TrainingJob.objects.for_tenant(globex.org).get(pk=theirs.pk).misclassified == [EXAMPLE]
    event = AuditEvent.objects.for_tenant(acme.org).get(action="dataset.deleted")
    assert event.data == {"name": "d.csv", "jobs_with_examples_removed": 1}


def test_a_refused_delete_keeps_the_examples(acme):
    from saas.common.errors import Conflict
    from saas.jobs.services import training_job_create

    ds, job = _succeeded_job(acme.org, "d.csv")
    training_job_create(organization=acme.org, dataset=ds, actor=Actor.system())  # queued
    with pytest.raises(Conflict):
        dataset_delete(dataset=ds, actor=Actor.system())
    assert TrainingJob.objects.for_tenant(acme.org).get(pk=job.pk).misclassified == [EXAMPLE]
