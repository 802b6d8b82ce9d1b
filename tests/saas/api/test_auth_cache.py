"""The request path's per-process caches (``saas.common.ttlcache``): API keys with their
organisation and creator's role (``saas.apikeys.services``), plan limits
(``saas.billing.selectors``) and trained-model rows (``saas.registry.selectors``). What they may serve is at most ``TRAINYARD_REQUEST_CACHE_SECONDS``
(1 s) old: a revoked key, a suspended organisation, a removed creator or a lowered limit takes
effect within 1 s, though this process never hears of the change (each write below goes
through the service, as in another process, and nothing invalidates the cache).

The rest of the suite runs with the caches off (tests/conftest.py); these turn them on.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from saas.apikeys import services as apikeys
from saas.apikeys.models import ApiKey
from saas.billing import selectors as billing
from saas.common.actor import Actor
from saas.common.ttlcache import TTLCache
from saas.datasets.models import Dataset
from saas.jobs.models import TrainingJob
from saas.registry import selectors as registry
from saas.registry.models import TrainedModel
from saas.tenancy.models import Membership
from saas.tenancy.services import organization_suspend
from tests.conftest import set_plan_limits

pytestmark = pytest.mark.django_db
BOUND = 1.0


@pytest.fixture(autouse=True)
def _cache_on(settings):
    settings.TRAINYARD_REQUEST_CACHE_SECONDS = BOUND
    caches = (apikeys._resolved_keys, billing._request_limits, registry._models)
    for cache in caches:
        cache.clear()
    yield
    for cache in caches:
        cache.clear()


def _refused_within_bound(client: APIClient, path: str, changed_at: float, status: int) -> None:
    """Wait until ``BOUND`` seconds after the change, then the request must get ``status``."""
    time.sleep(max(0.0, changed_at + BOUND - time.monotonic()))
    assert client.get(path).status_code == status


def test_steady_state_key_requests_read_no_key_row(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/v1/datasets").status_code == 200
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert "apikeys_apikey" not in sql and "billing_" not in sql and "membership" not in sql


def test_a_revoked_key_is_refused_within_1_s(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200  # cached now
    apikeys.api_key_revoke(api_key=client.api_key, actor=Actor.system())
    revoked_at = time.monotonic()
    _refused_within_bound(client, "/v1/datasets", revoked_at, 401)


def test_a_suspended_organisation_is_refused_within_1_s(acme):
    client = acme.key("developer")
    # A write that costs money: 404 (no such job) while active, 403 once suspended.
    path = "/v1/training-jobs/tj_missing/cancel"
    assert client.post(path).status_code == 404
    organization_suspend(organization=acme.org, actor=Actor.system())
    suspended_at = time.monotonic()
    time.sleep(max(0.0, suspended_at + BOUND - time.monotonic()))
    r = client.post(path)
    assert r.status_code == 403 and r.json()["type"].endswith("organization-suspended")


def test_a_removed_creator_s_key_loses_access_within_1_s(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200
    Membership.objects.filter(organization=acme.org, user=acme.users["developer"]).delete()
    removed_at = time.monotonic()
    _refused_within_bound(client, "/v1/datasets", removed_at, 403)


def test_a_lowered_rate_limit_applies_within_1_s(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200
    set_plan_limits(requests_per_key=1)  # an admin edit of the Plan row
    changed_at = time.monotonic()
    time.sleep(max(0.0, changed_at + BOUND - time.monotonic()))
    client.get("/v1/datasets")  # the bucket, clamped to its new size, holds one token
    assert client.get("/v1/datasets").status_code == 429


def test_a_cached_key_still_checks_the_secret(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer {client.api_key.prefix}_{'A' * 43}")
    assert forged.get("/v1/datasets").status_code == 401


def test_cached_objects_are_per_request_copies(acme):
    client = acme.key("developer")
    assert client.get("/v1/datasets").status_code == 200
    header = client._credentials["HTTP_AUTHORIZATION"]
    raw = header.removeprefix("Bearer ")
    first = apikeys.api_key_resolve(raw=raw)
    first.api_key.organization.status = "suspended"  # a careless caller
    again = apikeys.api_key_resolve(raw=raw)
    assert again.api_key.organization.status == "active"
    assert again.creator_role == Membership.Role.DEVELOPER
    assert ApiKey.objects.for_tenant(acme.org).filter(pk=again.api_key.pk).exists()


def test_ttl_cache_bound_and_misses(settings):
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    cache: TTLCache[str, int] = TTLCache(max_entries=2)
    assert cache.get("a", load) == 1 and cache.get("a", load) == 1  # second from the cache
    time.sleep(BOUND)
    assert cache.get("a", load) == 2  # older than the bound: read again
    assert cache.get("b", lambda: None) is None and cache.get("b", load) == 3  # None not kept
    cache.get("c", load)  # over max_entries: the oldest ("a") goes
    assert cache.get("a", load) == 5
    settings.TRAINYARD_REQUEST_CACHE_SECONDS = 0
    assert cache.get("a", load) == 6 and cache.get("a", load) == 7  # off: every call loads


def test_a_cached_model_is_still_404_to_another_tenant(tenant, other_tenant):
    ds = Dataset.objects.for_tenant(tenant.org).create(
        organization=tenant.org,
        name="d.csv",
        task="text-classification",
        num_examples=2,
        classes={"a": 1, "b": 1},
        report={},
        size_bytes=1,
        sha256="0" * 64,
        storage_key="none",
    )
    job = TrainingJob.objects.for_tenant(tenant.org).create(
        organization=tenant.org,
        dataset=ds,
        task=ds.task,
        base_model="x",
        hyperparameters={},
        status="succeeded",
    )
    model = TrainedModel.objects.for_tenant(tenant.org).create(
        organization=tenant.org,
        job=job,
        task=job.task,
        base_model="x",
        classes=["a", "b"],
        metrics={},
        artifact_key="none",
        artifact_bytes=1,
        artifact_sha256="0" * 64,
    )
    path = f"/v1/models/{model.pk}"
    assert tenant.client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        assert tenant.client.get(path).json()["id"] == model.pk  # from the cache
    assert not ctx.captured_queries
    r = other_tenant.client.get(path)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_represent_renders_what_the_serializer_does(tenant):
    """``represent`` (one bound output serializer per class) equals a fresh serializer's
    ``.data``, for two different rows in turn (nothing of the first stays behind)."""
    from saas.api.base import represent
    from saas.api.v1.models import ModelOut

    for name in ("first", "second"):
        ds = Dataset.objects.for_tenant(tenant.org).create(
            organization=tenant.org,
            name=f"{name}.csv",
            task="text-classification",
            num_examples=2,
            classes={"a": 1, "b": 1},
            report={},
            size_bytes=1,
            sha256="0" * 64,
            storage_key="none",
        )
        job = TrainingJob.objects.for_tenant(tenant.org).create(
            organization=tenant.org,
            dataset=ds,
            task=ds.task,
            base_model=name,
            hyperparameters={},
            status="succeeded",
        )
        model = TrainedModel.objects.for_tenant(tenant.org).create(
            organization=tenant.org,
            job=job,
            task=job.task,
            base_model=name,
            classes=[name],
            metrics={"accuracy": 0.5},
            artifact_key="none",
            artifact_bytes=7,
            artifact_sha256="1" * 64,
        )
        assert represent(ModelOut, model) == dict(ModelOut(model).data)
