"""Rate limits (Redis token buckets), the in-flight job cap, and Idempotency-Key semantics."""

import io

import pytest

from saas.datasets.models import Dataset
from saas.jobs.models import TrainingJob
from saas.limits.models import IdempotencyRecord
from tests.conftest import set_plan_limits, small_text_rows, text_csv

pytestmark = pytest.mark.django_db


def with_limits(settings, **free):
    """Change the free plan's limits on its Plan row (``settings`` kept for the callers)."""
    set_plan_limits("free", **free)


def test_rate_limit_headers_and_429(acme, settings):
    with_limits(settings, requests_per_key=3, requests_per_organization=100)
    c = acme.key("owner")
    remaining = []
    for _ in range(3):
        r = c.get("/v1/datasets")
        assert r.status_code == 200
        assert r["RateLimit-Limit"] == "3"
        remaining.append(int(r["RateLimit-Remaining"]))
        assert int(r["RateLimit-Reset"]) >= 1
    assert remaining == [2, 1, 0]
    r = c.get("/v1/datasets")
    assert r.status_code == 429 and r["Content-Type"].startswith("application/problem+json")
    assert int(r["Retry-After"]) >= 1 and "retry in" in r.json()["detail"]
    # another key of the same organisation has its own bucket
    assert acme.key("owner").get("/v1/datasets").status_code == 200


def test_organisation_bucket_is_shared_by_its_keys(acme, globex, settings):
    with_limits(settings, requests_per_key=100, requests_per_organization=4)
    keys = [acme.key("owner") for _ in range(3)]
    codes = [k.get("/v1/datasets").status_code for k in keys for _ in range(2)]
    assert codes.count(200) == 4 and codes.count(429) == 2
    assert globex.key("owner").get("/v1/datasets").status_code == 200  # other tenants unaffected


def test_refused_requests_do_not_spend_the_other_bucket(acme, settings):
    with_limits(settings, requests_per_key=1, requests_per_organization=3)
    a, b = acme.key("owner"), acme.key("owner")
    assert a.get("/v1/datasets").status_code == 200
    assert a.get("/v1/datasets").status_code == 429
    assert a.get("/v1/datasets").status_code == 429
    assert b.get("/v1/datasets").status_code == 200  # a's refusals took nothing from the org bucket
    assert int(b.get("/v1/datasets")["RateLimit-Remaining"]) == 0


def test_active_job_cap_at_submit(acme, settings):
    with_limits(settings, max_active_jobs=2)
    c = acme.key("owner")
    from tests.conftest import upload

    ds = upload(c, text_csv(small_text_rows())).json()
    for _ in range(2):
        assert c.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").status_code == 201
    r = c.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert (
        r.status_code == 429
        and r.json()["limit"] == 2
        and "queued or running" in r.json()["detail"]
    )
    assert TrainingJob.objects.for_tenant(acme.org).count() == 2


def post_csv(client, data: bytes, key: str | None, name="d.csv"):
    f = io.BytesIO(data)
    f.name = name
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        "/v1/datasets", {"file": f, "task": "text-classification"}, format="multipart", **headers
    )


def test_idempotent_replay_of_a_multipart_upload(acme):
    c = acme.key("owner")
    data = text_csv(small_text_rows())
    first = post_csv(c, data, "upload-1")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first
    again = post_csv(c, data, "upload-1")  # a new multipart boundary, same content
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Dataset.objects.for_tenant(acme.org).count() == 1


def test_same_key_different_body_is_422(acme):
    c = acme.key("owner")
    post_csv(c, text_csv(small_text_rows()), "k")
    r = post_csv(c, text_csv(small_text_rows(13)), "k")
    assert r.status_code == 422 and r.json()["type"].endswith("idempotency-key-reused")
    assert Dataset.objects.for_tenant(acme.org).count() == 1


def test_same_key_in_flight_is_409(acme):
    c = acme.key("owner")
    from saas.limits.idempotency import idempotency_begin

    data = text_csv(small_text_rows())
    # a first request that has claimed the key and not finished yet
    r = post_csv(c, data, None)  # learn the fingerprint the route computes by doing it for real
    IdempotencyRecord.objects.for_tenant(acme.org).delete()
    rec = idempotency_begin(
        organization_id=acme.org.pk,
        route=f"/v1/training-jobs#{c.api_key.pk}",
        key="busy",
        fingerprint="f",
    )
    assert rec.response_status is None
    r = c.post("/v1/training-jobs", {"dataset": "ds_x"}, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert r.status_code in (409, 422)
    # the same fingerprint while in flight → 409
    IdempotencyRecord.objects.for_tenant(acme.org).delete()
    import hashlib
    import json

    fp = hashlib.sha256(
        b"POST /v1/training-jobs\n" + json.dumps({"dataset": "ds_x"}, sort_keys=True).encode()
    ).hexdigest()
    idempotency_begin(
        organization_id=acme.org.pk,
        route=f"/v1/training-jobs#{c.api_key.pk}",
        key="busy",
        fingerprint=fp,
    )
    r = c.post("/v1/training-jobs", {"dataset": "ds_x"}, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert r.status_code == 409 and "still being processed" in r.json()["detail"]


def test_keys_are_scoped_by_organisation_and_route(acme, globex):
    data = text_csv(small_text_rows())
    a = post_csv(acme.key("owner"), data, "shared-key")
    b = post_csv(globex.key("owner"), data, "shared-key")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    assert "Idempotent-Replayed" not in b


def test_errors_are_replayed_too(acme):
    c = acme.key("owner")
    r1 = c.post(
        "/v1/training-jobs", {"dataset": "ds_missing"}, format="json", HTTP_IDEMPOTENCY_KEY="e"
    )
    r2 = c.post(
        "/v1/training-jobs", {"dataset": "ds_missing"}, format="json", HTTP_IDEMPOTENCY_KEY="e"
    )
    assert r1.status_code == r2.status_code == 400 and r2["Idempotent-Replayed"] == "true"
    assert r2["Content-Type"].startswith("application/problem+json")


def test_idempotency_key_too_long(acme):
    r = acme.key("owner").post(
        "/v1/training-jobs", {"dataset": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 300
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "\x7f"])
def test_idempotency_key_with_control_characters_is_400(acme, bad):
    r = acme.key("owner").post(
        "/v1/training-jobs", {"dataset": "x"}, format="json", HTTP_IDEMPOTENCY_KEY=bad
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not IdempotencyRecord.objects.unscoped_all_tenants().exists()


def test_a_nul_in_the_path_is_not_a_500(acme):
    r = acme.key("owner").post(
        "/v1/training-jobs/tj_%00x/cancel", {}, format="json", HTTP_IDEMPOTENCY_KEY="nul-path"
    )
    assert r.status_code == 404
    assert r["Content-Type"].startswith("application/problem+json")
    r = acme.key("owner").get("/v1/training-jobs?status=%00")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"


def test_expired_records_are_purged(acme):
    from datetime import timedelta

    from django.utils import timezone

    from saas.limits.idempotency import idempotency_purge

    post_csv(acme.key("owner"), text_csv(small_text_rows()), "old")
    IdempotencyRecord.objects.for_tenant(acme.org).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert idempotency_purge() == 1


def test_key_creation_replay_never_returns_or_stores_the_secret(acme):
    owner, dev = acme.session("owner"), acme.session("developer")
    first = owner.post(
        "/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="create-ci"
    )
    assert first.status_code == 201 and first.json()["secret"].startswith("ty_live_")
    again = owner.post(
        "/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="create-ci"
    )
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert "secret" not in again.json() and again.json()["redacted"] == ["secret"]
    assert first.json()["secret"] not in str(
        list(IdempotencyRecord.objects.for_tenant(acme.org).values())
    )
    other = dev.post(
        "/v1/api-keys", {"name": "ci"}, format="json", HTTP_IDEMPOTENCY_KEY="create-ci"
    )
    assert other.status_code == 201 and "Idempotent-Replayed" not in other  # per caller, not shared
    assert other.json()["id"] != first.json()["id"]


def test_rate_limits_fail_open_when_redis_is_unreachable(tenant, settings):
    """Availability first: with Redis gone the request is served (and logged), not refused;
    with Redis back the limiter's connection is made again and headers return."""
    good = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    r = tenant.client.get("/v1/datasets")
    assert r.status_code == 200 and "RateLimit-Limit" not in r
    settings.REDIS_URL = good
    assert "RateLimit-Limit" in tenant.client.get("/v1/datasets")
