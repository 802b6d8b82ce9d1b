"""Model delete: ``DELETE /v1/models/{id}`` and the dashboard's button. Scoped (another
tenant's model is a 404 and stays), scope- and role-checked, audited once, idempotent; the
artifact leaves storage, storage sampling stops billing it, the data plane's lookup no longer
finds it and its replicas are told on ``dp:evict``."""

from __future__ import annotations

import datetime
import time

import pytest
import redis as redis_lib
from django.core.files.storage import default_storage
from django.utils import timezone

from saas.billing.services.storage import storage_sample
from saas.inference.selectors import serving_model
from saas.metering.models import Meter, UsageEvent
from saas.registry.models import TrainedModel
from saas.registry.services import EVICT_CHANNEL
from saas.tenancy.models import AuditEvent
from tests.saas.registry.test_services import _register

pytestmark = pytest.mark.django_db


def _deleted_events(org):
    return AuditEvent.objects.for_tenant(org).filter(action="model.deleted")


def test_delete_removes_the_model_everywhere_and_is_audited(
    acme, tmp_path, django_capture_on_commit_callbacks
):
    _, artifact, model = _register(acme.org, tmp_path)
    client = acme.key("developer")
    assert default_storage.exists(artifact.key)
    with django_capture_on_commit_callbacks(execute=True):
        r = client.delete(f"/v1/models/{model.pk}")
    assert r.status_code == 204, r.content
    assert not default_storage.exists(artifact.key)
    for path in (f"/v1/models/{model.pk}", f"/v1/models/{model.pk}/download"):
        r = client.get(path)
        assert r.status_code == 404 and r["Content-Type"] == "application/problem+json"
    assert client.get("/v1/models").json()["data"] == []
    job = client.get(f"/v1/training-jobs/{model.job_id}").json()
    assert job["model"] is None
    assert serving_model(model_id=model.pk) is None  # what the data plane reads
    (event,) = _deleted_events(acme.org)
    assert event.target_id == model.pk and event.actor_api_key_id == client.api_key.pk
    assert event.data == {"bytes": artifact.size, "training_job": model.job_id}


def test_delete_is_idempotent(acme, tmp_path, django_capture_on_commit_callbacks):
    _, _, model = _register(acme.org, tmp_path)
    client = acme.key()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert client.delete(f"/v1/models/{model.pk}").status_code == 204
        assert client.delete(f"/v1/models/{model.pk}").status_code == 204
    assert len(callbacks) == 1  # the second removes and announces nothing
    assert _deleted_events(acme.org).count() == 1


def test_another_tenants_model_is_a_404_and_stays(acme, globex, tmp_path):
    _, artifact, model = _register(acme.org, tmp_path)
    for client in (globex.key(), globex.session("owner")):
        r = client.delete(f"/v1/models/{model.pk}")
        assert r.status_code == 404 and r["Content-Type"] == "application/problem+json"
    assert client.delete("/v1/models/mdl_missing").status_code == 404
    assert TrainedModel.objects.for_tenant(acme.org).get(pk=model.pk).deleted_at is None
    assert default_storage.exists(artifact.key)
    assert not _deleted_events(acme.org).exists() and not _deleted_events(globex.org).exists()


@pytest.mark.parametrize(
    "who", [("key", "owner", ["training:read", "models:predict"]), ("session", "viewer", None)]
)
def test_delete_needs_training_write(acme, tmp_path, who):
    _, artifact, model = _register(acme.org, tmp_path)
    kind, role, scopes = who
    client = acme.key(role, scopes=scopes) if kind == "key" else acme.session(role)
    r = client.delete(f"/v1/models/{model.pk}")
    assert r.status_code == 403 and r["Content-Type"] == "application/problem+json"
    assert TrainedModel.objects.for_tenant(acme.org).get(pk=model.pk).deleted_at is None
    assert default_storage.exists(artifact.key) and not _deleted_events(acme.org).exists()


def test_storage_billing_stops_with_the_delete(acme, tmp_path):
    _, artifact, model = _register(acme.org, tmp_path)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    storage_sample(at=hour)
    before = UsageEvent.objects.for_tenant(acme.org).get(meter=Meter.STORAGE_GB_HOURS)
    assert before.dimensions["model_bytes"] == artifact.size
    assert acme.key().delete(f"/v1/models/{model.pk}").status_code == 204
    storage_sample(at=hour + datetime.timedelta(hours=1))
    after = UsageEvent.objects.for_tenant(acme.org).filter(meter=Meter.STORAGE_GB_HOURS)
    # The dataset is still billed; the model's bytes are not.
    assert [e.dimensions["model_bytes"] for e in after.order_by("occurred_at")] == [
        artifact.size,
        0,
    ]


def test_the_deletion_is_announced_to_the_data_plane(
    acme, tmp_path, settings, django_capture_on_commit_callbacks
):
    _, _, model = _register(acme.org, tmp_path)
    r = redis_lib.Redis.from_url(settings.REDIS_URL)
    pubsub = r.pubsub()
    pubsub.subscribe(EVICT_CHANNEL)
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    with django_capture_on_commit_callbacks(execute=True):
        assert acme.key().delete(f"/v1/models/{model.pk}").status_code == 204
    deadline = time.monotonic() + 5
    message = None
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)
        if message and message["type"] == "message" and message["data"] == model.pk.encode():
            break
    pubsub.close()
    assert message and message["data"] == model.pk.encode()


def test_dashboard_delete_button(acme, tmp_path, django_capture_on_commit_callbacks):
    _, artifact, model = _register(acme.org, tmp_path)
    page = acme.session("developer").get(f"/app/models/{model.pk}")
    assert f'action="/app/models/{model.pk}/delete"' in page.content.decode()
    viewer_page = acme.session("viewer").get(f"/app/models/{model.pk}")
    assert "/delete" not in viewer_page.content.decode()
    assert acme.session("viewer").post(f"/app/models/{model.pk}/delete").status_code == 403
    assert acme.session("developer").get(f"/app/models/{model.pk}/delete").status_code == 405
    assert TrainedModel.objects.for_tenant(acme.org).get(pk=model.pk).deleted_at is None

    developer = acme.session("developer")
    with django_capture_on_commit_callbacks(execute=True):
        r = developer.post(f"/app/models/{model.pk}/delete")
    assert r.status_code == 302 and r["Location"].endswith("/app/models")
    assert not default_storage.exists(artifact.key)
    (event,) = _deleted_events(acme.org)
    assert event.actor_user_id == acme.users["developer"].pk
    assert developer.get(f"/app/models/{model.pk}").status_code == 404
    assert developer.post(f"/app/models/{model.pk}/delete").status_code == 404


def test_delete_is_in_the_openapi_schema(client):
    schema = client.get("/v1/openapi.json").json()
    operation = schema["paths"]["/v1/models/{model_id}"]["delete"]
    assert operation["operationId"] == "models_destroy"
    assert "204" in operation["responses"]
