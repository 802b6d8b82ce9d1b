"""A deleted model stops being served at once: ``model_delete`` announces it on ``dp:evict``
and a running replica forgets its metadata (cached for a minute otherwise), drops it from
memory and removes its extracted files. The real app, model, PostgreSQL and Redis."""

from __future__ import annotations

import time

import pytest

from saas.common.actor import Actor
from saas.registry.models import TrainedModel
from saas.registry.services import model_delete
from serve.plane import MODEL_TTL_SECONDS
from tests.serve.test_predict import bearer

pytestmark = pytest.mark.tf


def _predict(client, key, model_id):
    return client.post(
        f"/v1/models/{model_id}/predict", json={"inputs": ["x"]}, headers=bearer(key)
    )


def test_a_deleted_model_is_evicted_by_every_replica_at_once(
    serve_client, tenant, text_model, settings
):
    assert _predict(serve_client, tenant.key, text_model).status_code == 200
    extracted = settings.TRAINYARD_MODEL_CACHE_DIR / text_model
    assert extracted.is_dir()

    model = TrainedModel.objects.for_tenant(tenant.org).get(pk=text_model)
    t0 = time.monotonic()
    assert model_delete(model=model, actor=Actor.system()) is True  # commits: announces
    while time.monotonic() - t0 < 10:
        r = _predict(serve_client, tenant.key, text_model)
        if r.status_code == 404:
            break
        assert r.status_code == 200
        time.sleep(0.05)
    took = time.monotonic() - t0
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem")
    assert took < MODEL_TTL_SECONDS / 6, took  # the announcement, not the metadata expiry
    while extracted.exists() and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not extracted.exists()
    assert serve_client.app.state.plane.store.loaded() == []
    ready = serve_client.get(f"/v2/models/{text_model}/ready", headers=bearer(tenant.key))
    assert ready.status_code == 404
