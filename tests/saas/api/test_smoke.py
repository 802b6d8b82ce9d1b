import pytest

from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def test_upload_and_train_create(tenant):
    r = upload(tenant.client, text_csv(small_text_rows()))
    assert r.status_code == 201, r.content
    ds = r.json()
    assert ds["classes"] == {"negative": 12, "positive": 12}
    r = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert r.status_code == 201, r.content
    job = r.json()
    assert job["status"] == "queued"
    assert job["queue_position"] == 1
    assert job["wait_reason"] == "capacity"
