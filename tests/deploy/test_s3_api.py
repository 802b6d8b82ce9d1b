"""The public API with its files in S3-compatible object storage (django-storages against
moto's server on loopback, :func:`tests.deploy.conftest.s3_storage`): a dataset upload lands
in the bucket, a model download streams from it, deletions remove the objects, and the data
plane's readiness reads the bucket."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time

import pytest

from saas.datasets.models import Dataset
from saas.registry.services import model_artifact_store, model_register
from tests.conftest import DATA, upload
from tests.deploy.conftest import S3

SENTIMENT = DATA / "text/sentiment_labelled_sentences.csv"


def _dataset(tenant) -> dict:
    """Upload the real sentiment CSV (3000 rows) through ``POST /v1/datasets``."""
    r = upload(tenant.client, SENTIMENT.read_bytes(), name="sentiment.csv")
    assert r.status_code == 201, r.content
    return r.json()


def _model(tenant, tmp_path, model_id: str = "mdl_s3download1") -> str:
    """A model of ``tenant`` whose artifact is stored through the default storage: a job
    submitted through the API on an uploaded dataset, its SavedModel folder (files as the
    exporter lays them out) packed and registered as a worker's completion does."""
    ds = _dataset(tenant)
    job = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert job.status_code == 201, job.content
    export = tmp_path / "export"
    (export / "variables").mkdir(parents=True)
    (export / "assets").mkdir()
    (export / "saved_model.pb").write_bytes(b"graph " * 1000)
    (export / "variables" / "variables.index").write_bytes(b"index")
    (export / "variables" / "variables.data-00000-of-00001").write_bytes(bytes(range(256)) * 64)
    (export / "assets" / "labels.txt").write_text("negative\npositive\n")
    artifact = model_artifact_store(
        organization_id=tenant.org.pk, model_id=model_id, saved_model_dir=str(export)
    )
    model_register(
        model_id=model_id,
        organization_id=tenant.org.pk,
        job_id=job.json()["id"],
        task="text-classification",
        base_model=job.json()["base_model"],
        classes=["negative", "positive"],
        metrics={"accuracy": 0.9},
        artifact=artifact,
    )
    return model_id


@pytest.mark.django_db
def test_an_uploaded_csv_is_stored_in_the_bucket_and_validated(s3_storage: S3, tenant):
    body = _dataset(tenant)
    assert body["status"] == "ready"
    assert body["classes"] == {"negative": 1500, "positive": 1500}
    dataset = Dataset.objects.for_tenant(tenant.org).get(pk=body["id"])
    assert s3_storage.keys() == [dataset.storage_key]
    assert dataset.storage_key.startswith(f"tenants/{tenant.org.pk}/")
    stored = s3_storage.read(dataset.storage_key)
    assert stored == SENTIMENT.read_bytes()
    assert hashlib.sha256(stored).hexdigest() == dataset.sha256
    assert tenant.client.get(f"/v1/datasets/{body['id']}").json()["status"] == "ready"


@pytest.mark.django_db
def test_a_model_download_streams_the_artifact_from_the_bucket(
    s3_storage: S3, tenant, other_tenant, tmp_path
):
    model_id = _model(tenant, tmp_path)
    [key] = [k for k in s3_storage.keys() if "/models/" in k]
    in_bucket = s3_storage.read(key)

    r = tenant.client.get(f"/v1/models/{model_id}/download")
    assert r.status_code == 200
    got = b"".join(r.streaming_content)
    assert got == in_bucket
    assert int(r["Content-Length"]) == len(got)
    assert r["X-Content-SHA256"] == hashlib.sha256(got).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(got), mode="r:gz") as tar:
        labels = tar.extractfile("saved_model/assets/labels.txt")
        assert labels is not None and labels.read() == b"negative\npositive\n"
    # Another tenant's key: the same 404 as for a model that does not exist.
    assert other_tenant.client.get(f"/v1/models/{model_id}/download").status_code == 404


@pytest.mark.django_db
def test_deleting_a_dataset_removes_its_object(
    s3_storage: S3, tenant, other_tenant, django_capture_on_commit_callbacks
):
    body = _dataset(tenant)
    [key] = s3_storage.keys()
    # Another tenant cannot delete it: 404, the object stays.
    with django_capture_on_commit_callbacks(execute=True):
        assert other_tenant.client.delete(f"/v1/datasets/{body['id']}").status_code == 404
    assert s3_storage.keys() == [key]
    # The object goes once the deletion has committed.
    with django_capture_on_commit_callbacks(execute=True):
        assert tenant.client.delete(f"/v1/datasets/{body['id']}").status_code == 204
    assert s3_storage.keys() == []
    assert Dataset.objects.for_tenant(tenant.org).get(pk=body["id"]).status == "deleted"


@pytest.mark.django_db
def test_deleting_a_model_removes_its_artifact(
    s3_storage: S3, tenant, tmp_path, django_capture_on_commit_callbacks
):
    model_id = _model(tenant, tmp_path)
    assert any("/models/" in k for k in s3_storage.keys())
    with django_capture_on_commit_callbacks(execute=True):
        assert tenant.client.delete(f"/v1/models/{model_id}").status_code == 204
    assert not any("/models/" in k for k in s3_storage.keys())
    assert tenant.client.get(f"/v1/models/{model_id}/download").status_code == 404


def _storage_check(client, until, seconds: float = 10.0) -> str:
    """The data plane's ``storage`` check once ``until(result)`` holds (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        result = client.get("/v2/health/ready").json()["checks"]["storage"]
        if until(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_the_data_plane_is_ready_only_while_the_bucket_can_be_read(
    transactional_db, s3_storage: S3
):
    from tests.serve.conftest import serve_app

    with serve_app() as c:
        assert _storage_check(c, lambda r: r == "ok") == "ok"
        # A missing bucket (a wrong TRAINYARD_S3_BUCKET): S3 answers the HEAD with 404.
        s3_storage.client().delete_bucket(Bucket=s3_storage.bucket)
        assert _storage_check(c, lambda r: r != "ok") == "unreadable (ClientError 404)"
        r = c.get("/v2/health/ready")
        assert r.status_code == 503 and r.json()["detail"] == "Failing checks: storage."
        assert s3_storage.url not in r.text  # the endpoint is not echoed
        # The endpoint gone altogether.
        s3_storage.client().create_bucket(Bucket=s3_storage.bucket)
        assert _storage_check(c, lambda r: r == "ok") == "ok"
        s3_storage.stop()
        assert _storage_check(c, lambda r: r != "ok").startswith("unreadable (")
    _wait_storage_probe_idle()


def _wait_storage_probe_idle(seconds: float = 60.0) -> None:
    """Wait for a storage probe still retrying the stopped endpoint (botocore backs off for
    seconds): the next test's readiness would otherwise await this test's probe."""
    from serve import health

    deadline = time.monotonic() + seconds
    while health._probe_running is not None and not health._probe_running.done():
        assert time.monotonic() < deadline, "the storage probe never ended"
        time.sleep(0.2)
