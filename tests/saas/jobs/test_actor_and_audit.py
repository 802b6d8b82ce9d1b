"""Who did it: the creating user beside the creating key on datasets and jobs, and the audit
log for creating a dataset, creating a job and downloading a model (API and dashboard).
"""

from __future__ import annotations

import pytest

from saas.datasets.models import Dataset
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.registry.models import TrainedModel
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv, upload
from tests.saas.dashboard.conftest import browser, upload_csv
from tests.saas.jobs.test_state_machine import RESOURCES, fake_result

pytestmark = pytest.mark.django_db


def _audit(org, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_tenant(org).filter(action=action).order_by("created_at"))


def test_api_key_creations_record_the_key_and_its_user(acme):
    client = acme.key("developer")
    ds = upload(client, text_csv(small_text_rows())).json()
    job = client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()

    dataset = Dataset.objects.for_tenant(acme.org).get(pk=ds["id"])
    row = TrainingJob.objects.for_tenant(acme.org).get(pk=job["id"])
    developer = acme.users["developer"]
    for obj in (dataset, row):
        assert obj.created_by_key_id == client.api_key.pk and obj.created_by_id == developer.pk
    (made,) = _audit(acme.org, "dataset.created")
    assert (made.target_id, made.actor_api_key_id, made.actor_user_id) == (
        ds["id"],
        client.api_key.pk,
        developer.pk,
    )
    assert made.data["name"] == "data.csv" and made.data["task"] == "text-classification"
    (queued,) = _audit(acme.org, "training_job.created")
    assert (queued.target_id, queued.actor_api_key_id) == (job["id"], client.api_key.pk)
    assert queued.data["dataset"] == ds["id"]


def test_dashboard_creations_record_the_signed_in_user(acme, settings):
    admin = browser(acme.users["admin"])
    r = upload_csv(admin, text_csv(small_text_rows()))
    assert r.status_code == 302, r.content[:1000]
    dataset = Dataset.objects.for_tenant(acme.org).get()
    r = admin.post("/app/training/new", {"dataset": dataset.pk, "epochs": 2})
    assert r.status_code == 302, r.content[:1000]
    job = TrainingJob.objects.for_tenant(acme.org).get()
    for obj in (dataset, job):
        assert obj.created_by_id == acme.users["admin"].pk and obj.created_by_key_id is None
    for action, target in (("dataset.created", dataset.pk), ("training_job.created", job.pk)):
        (event,) = _audit(acme.org, action)
        assert event.target_id == target and event.actor_user_id == acme.users["admin"].pk
        assert event.actor_api_key_id is None


def test_a_refused_create_is_not_audited(acme):
    client = acme.key("developer")
    r = upload(client, b"only one column\nx\n")
    assert r.status_code == 400
    ds = upload(client, text_csv(small_text_rows())).json()
    r = client.post(
        "/v1/training-jobs",
        {"dataset": ds["id"], "hyperparameters": {"epochs": 0}},
        format="json",
    )
    assert r.status_code == 400
    assert len(_audit(acme.org, "dataset.created")) == 1
    assert _audit(acme.org, "training_job.created") == []
    assert TrainingJob.objects.for_tenant(acme.org).count() == 0


def _trained_model(acme, tmp_path) -> TrainedModel:
    client = acme.key("owner")
    ds = upload(client, text_csv(small_text_rows())).json()
    job = client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    start = jobs.training_job_start(job_id=job["id"])
    jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=RESOURCES)
    return TrainedModel.objects.for_tenant(acme.org).get(job_id=job["id"])


def test_model_download_is_audited_and_another_tenants_is_not(acme, globex, tmp_path):
    model = _trained_model(acme, tmp_path)
    client = acme.key("viewer")
    r = client.get(f"/v1/models/{model.pk}/download")
    assert r.status_code == 200
    body = b"".join(r.streaming_content)
    assert len(body) == model.artifact_bytes == int(r["Content-Length"])
    (event,) = _audit(acme.org, "model.downloaded")
    assert (event.target_id, event.actor_api_key_id) == (model.pk, client.api_key.pk)
    assert event.data == {"bytes": model.artifact_bytes}

    assert globex.key("owner").get(f"/v1/models/{model.pk}/download").status_code == 404
    assert len(_audit(acme.org, "model.downloaded")) == 1
    assert AuditEvent.objects.for_tenant(globex.org).filter(action="model.downloaded").count() == 0
