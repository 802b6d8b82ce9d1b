"""The model registry against PostgreSQL and the storage API: artifacts keyed by tenant and
round-tripped, one model per job, downloads audited, another tenant's model not found."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from saas.common.actor import Actor
from saas.common.errors import NotFound
from saas.datasets.services import dataset_create
from saas.jobs.services import training_job_create
from saas.registry import selectors
from saas.registry.models import TrainedModel
from saas.registry.services import (
    model_artifact_delete,
    model_artifact_extract,
    model_artifact_key,
    model_artifact_store,
    model_download,
    model_register,
)
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv

pytestmark = pytest.mark.django_db


def _saved_model_dir(tmp_path):
    src = tmp_path / "export"
    (src / "variables").mkdir(parents=True)
    (src / "saved_model.pb").write_bytes(b"graph")
    (src / "variables" / "variables.index").write_bytes(b"weights")
    return src


def _job(org):
    data = text_csv(small_text_rows())
    ds = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="text-classification",
        name="d.csv",
        actor=Actor.system(),
    )
    return training_job_create(organization=org, dataset=ds, actor=Actor.system())


def _register(org, tmp_path, model_id="mdl_test1"):
    job = _job(org)
    artifact = model_artifact_store(
        organization_id=org.pk, model_id=model_id, saved_model_dir=str(_saved_model_dir(tmp_path))
    )
    model = model_register(
        model_id=model_id,
        organization_id=org.pk,
        job_id=job.pk,
        task=job.task,
        base_model=job.base_model,
        classes=["negative", "positive"],
        metrics={"accuracy": 0.9},
        artifact=artifact,
    )
    return job, artifact, model


def test_the_artifact_is_keyed_by_tenant_and_round_trips(acme, tmp_path):
    src = _saved_model_dir(tmp_path)
    artifact = model_artifact_store(
        organization_id=acme.org.pk, model_id="mdl_a", saved_model_dir=str(src)
    )
    assert artifact.key == model_artifact_key(organization_id=acme.org.pk, model_id="mdl_a")
    assert artifact.key == f"tenants/{acme.org.pk}/models/mdl_a/v1/saved_model.tar.gz"
    with default_storage.open(artifact.key, "rb") as fh:
        blob = fh.read()
    assert (artifact.size, artifact.sha256) == (len(blob), hashlib.sha256(blob).hexdigest())
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        assert {"saved_model/saved_model.pb", "saved_model/variables/variables.index"} <= set(
            tar.getnames()
        )

    out = model_artifact_extract(key=artifact.key, dest=tmp_path / "cache" / "mdl_a")
    assert out == tmp_path / "cache" / "mdl_a" / "saved_model"
    assert (out / "variables" / "variables.index").read_bytes() == b"weights"
    # A second extraction finds the model in place.
    assert model_artifact_extract(key=artifact.key, dest=tmp_path / "cache" / "mdl_a") == out

    # Storing again replaces the tarball under the same key.
    (src / "saved_model.pb").write_bytes(b"graph v2")
    again = model_artifact_store(
        organization_id=acme.org.pk, model_id="mdl_a", saved_model_dir=str(src)
    )
    assert again.key == artifact.key and again.sha256 != artifact.sha256
    model_artifact_delete(key=again.key)
    assert not default_storage.exists(again.key)


def test_register_makes_one_model_per_job(acme, tmp_path):
    job, artifact, model = _register(acme.org, tmp_path)
    row = TrainedModel.objects.for_tenant(acme.org).get()
    assert (row.pk, row.job_id, row.organization_id) == ("mdl_test1", job.pk, acme.org.pk)
    assert (row.artifact_key, row.artifact_bytes, row.artifact_sha256) == (
        artifact.key,
        artifact.size,
        artifact.sha256,
    )
    assert selectors.model_for_job(organization_id=acme.org.pk, job_id=job.pk) == row
    with pytest.raises(IntegrityError), transaction.atomic():
        model_register(
            model_id="mdl_test2",
            organization_id=acme.org.pk,
            job_id=job.pk,
            task=job.task,
            base_model=job.base_model,
            classes=["a", "b"],
            metrics={},
            artifact=artifact,
        )
    assert TrainedModel.objects.for_tenant(acme.org).count() == 1


def test_download_is_audited_with_its_actor(acme, tmp_path):
    _, artifact, model = _register(acme.org, tmp_path)
    viewer = acme.users["viewer"]
    fh = model_download(model=model, actor=Actor(user_id=viewer.pk, ip="198.51.100.7"))
    with fh:
        assert hashlib.sha256(fh.read()).hexdigest() == artifact.sha256
    event = AuditEvent.objects.for_tenant(acme.org).get(action="model.downloaded")
    assert (event.target_id, event.actor_user_id, event.ip) == (model.pk, viewer.pk, "198.51.100.7")
    assert event.data == {"bytes": artifact.size}


def test_a_missing_artifact_is_not_audited(acme, tmp_path):
    _, artifact, model = _register(acme.org, tmp_path)
    default_storage.delete(artifact.key)
    with pytest.raises(FileNotFoundError):
        model_download(model=model, actor=Actor.system())
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="model.downloaded").exists()


def test_another_tenants_model_is_not_found(acme, globex, tmp_path):
    _, _, model = _register(acme.org, tmp_path)
    assert selectors.model_get(organization_id=acme.org.pk, model_id=model.pk) == model
    with pytest.raises(NotFound):
        selectors.model_get(organization_id=globex.org.pk, model_id=model.pk)
    with pytest.raises(NotFound):
        selectors.model_get(organization_id=acme.org.pk, model_id="mdl_missing")
    assert list(selectors.model_list(organization_id=globex.org.pk)) == []
    assert selectors.model_for_job(organization_id=globex.org.pk, job_id=model.job_id) is None
