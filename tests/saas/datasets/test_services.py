"""Dataset services and selectors against PostgreSQL and the storage API: the file keyed by
tenant, who created it, and deletion refused while a job needs the file."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.storage import default_storage

from saas.common.actor import Actor
from saas.common.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from saas.datasets import selectors
from saas.datasets.models import Dataset
from saas.datasets.services import JOB_ACTIVE_STATUSES, dataset_create, dataset_delete
from saas.jobs.models import TrainingJob
from saas.jobs.services import training_job_cancel, training_job_create
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def _create(org, data: bytes, actor: Actor, **extra) -> Dataset:
    return dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task=extra.pop("task", "text-classification"),
        name=extra.pop("name", "reviews.csv"),
        actor=actor,
        **extra,
    )


def _stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_create_stores_the_file_keyed_by_tenant_and_records_who(acme, settings):
    owner = acme.users["owner"]
    data = text_csv(small_text_rows())
    ds = _create(acme.org, data, Actor(user_id=owner.pk, ip="203.0.113.9"))

    assert ds.storage_key == f"tenants/{acme.org.pk}/datasets/{ds.pk}/data.csv"
    assert _stored_files(settings) == [ds.storage_key]
    with default_storage.open(ds.storage_key, "rb") as fh:
        assert fh.read() == data
    assert (ds.size_bytes, ds.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert ds.num_examples == 24 and ds.classes == {"negative": 12, "positive": 12}
    assert (ds.created_by_id, ds.created_by_key_id) == (owner.pk, None)

    event = AuditEvent.objects.for_tenant(acme.org).get(action="dataset.created")
    assert (event.target_id, event.actor_user_id, event.ip) == (ds.pk, owner.pk, "203.0.113.9")
    assert event.data == {
        "name": "reviews.csv",
        "task": "text-classification",
        "size_bytes": len(data),
    }


def test_a_key_created_dataset_records_the_key(acme):
    key = acme.key("developer").api_key
    ds = _create(acme.org, text_csv(small_text_rows()), Actor(api_key_id=key.pk))
    assert ds.created_by_key_id == key.pk and ds.created_by_id is None


def test_an_invalid_upload_stores_and_records_nothing(acme, settings):
    with pytest.raises(ValidationFailed) as err:
        _create(acme.org, b"text,label\n", Actor.system())
    assert err.value.errors  # every problem is listed, field and message
    with pytest.raises(ValidationFailed) as err:
        _create(acme.org, text_csv(small_text_rows()), Actor.system(), task="audio")
    assert err.value.errors == [
        {"field": "task", "message": "must be one of text-classification, image-classification"}
    ]
    settings.TRAINYARD_MAX_UPLOAD_BYTES = 10
    with pytest.raises(PayloadTooLarge):
        _create(acme.org, text_csv(small_text_rows()), Actor.system())

    assert not Dataset.objects.for_tenant(acme.org).exists()
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="dataset.created").exists()
    assert _stored_files(settings) == []


def test_delete_is_refused_while_a_job_uses_the_dataset(
    acme, settings, django_capture_on_commit_callbacks
):
    actor = Actor(user_id=acme.users["owner"].pk)
    ds = _create(acme.org, text_csv(small_text_rows()), actor)
    job = training_job_create(organization=acme.org, dataset=ds, actor=actor)

    with pytest.raises(Conflict):
        dataset_delete(dataset=ds, actor=actor)
    assert Dataset.objects.for_tenant(acme.org).get(pk=ds.pk).status == "ready"
    assert default_storage.exists(ds.storage_key)
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="dataset.deleted").exists()

    training_job_cancel(job=job, actor=actor)
    with django_capture_on_commit_callbacks(execute=True):
        dataset_delete(dataset=ds, actor=actor)
    row = Dataset.objects.for_tenant(acme.org).get(pk=ds.pk)
    assert row.status == "deleted" and row.deleted_at is not None
    assert not default_storage.exists(ds.storage_key)
    event = AuditEvent.objects.for_tenant(acme.org).get(action="dataset.deleted")
    assert (event.target_id, event.actor_user_id) == (ds.pk, actor.user_id)


def test_get_and_list_see_only_the_tenants_live_datasets(acme, globex):
    mine = _create(acme.org, text_csv(small_text_rows()), Actor.system(), name="mine")
    gone = _create(acme.org, text_csv(small_text_rows()), Actor.system(), name="gone")
    theirs = _create(globex.org, text_csv(small_text_rows()), Actor.system(), name="theirs")
    dataset_delete(dataset=gone, actor=Actor.system())

    assert [d.pk for d in selectors.dataset_list(organization=acme.org)] == [mine.pk]
    assert selectors.dataset_get(organization=acme.org, dataset_id=mine.pk) == mine
    for missing in (gone.pk, theirs.pk, "ds_nope"):
        with pytest.raises(NotFound):
            selectors.dataset_get(organization=acme.org, dataset_id=missing)


def test_sample_rows_are_spread_over_the_classes(acme):
    ds = _create(acme.org, text_csv(small_text_rows()), Actor.system())
    rows = selectors.dataset_sample_rows(dataset=ds, limit=6)
    assert len(rows) == 6
    assert sorted(r["label"] for r in rows) == ["negative"] * 3 + ["positive"] * 3
    assert selectors.dataset_sample_images(dataset=ds) == []


def test_datasets_names_the_jobs_active_statuses_by_value():
    assert tuple(JOB_ACTIVE_STATUSES) == tuple(s.value for s in TrainingJob.ACTIVE_STATUSES)


def test_dataset_in_use_by_a_queued_job_cannot_be_deleted(acme):
    client = acme.key("owner")
    ds = upload(client, text_csv(small_text_rows())).json()
    job = client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 409
    assert Dataset.objects.for_tenant(acme.org).get(pk=ds["id"]).status == "ready"
    client.post(f"/v1/training-jobs/{job['id']}/cancel")
    assert client.delete(f"/v1/datasets/{ds['id']}").status_code == 204
    (event,) = list(AuditEvent.objects.for_tenant(acme.org).filter(action="dataset.deleted"))
    assert event.target_id == ds["id"] and event.actor_api_key_id == client.api_key.pk
