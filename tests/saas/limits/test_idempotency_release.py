"""An aborted request releases its Idempotency-Key, and a dead holder's claim lapses.

The faults are injected at the database boundary (``connection.execute_wrapper``), the way a
worker timeout or a crash meets a real request: the view, the services and the key handling
all run for real.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from saas.datasets.models import Dataset
from saas.limits.idempotency import idempotency_begin
from saas.limits.models import IdempotencyRecord
from tests.conftest import small_text_rows, text_csv

pytestmark = pytest.mark.django_db


def post_csv(client, data: bytes, key: str):
    f = io.BytesIO(data)
    f.name = "d.csv"
    return client.post(
        "/v1/datasets",
        {"file": f, "task": "text-classification"},
        format="multipart",
        HTTP_IDEMPOTENCY_KEY=key,
    )


class FailOnInsert:
    """Raise ``exc`` when the dataset row is inserted: mid-request, after the key is claimed."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.fired = 0

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith('INSERT INTO "datasets_dataset"'):
            self.fired += 1
            raise self.exc
        return execute(sql, params, many, context)


def test_worker_timeout_inside_the_request_releases_the_key(acme):
    """gunicorn's worker timeout is ``sys.exit(1)`` in the request (SIGABRT handler): a
    ``BaseException`` DRF does not catch. The retry with the same key runs (201), not 409."""
    c = acme.key("owner")
    data = text_csv(small_text_rows())
    fault = FailOnInsert(SystemExit(1))
    with connection.execute_wrapper(fault), pytest.raises(SystemExit):
        post_csv(c, data, "abort-1")
    assert fault.fired == 1
    assert not IdempotencyRecord.objects.for_tenant(acme.org).exists()
    assert not Dataset.objects.for_tenant(acme.org).exists()
    retry = post_csv(c, data, "abort-1")
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
    assert Dataset.objects.for_tenant(acme.org).count() == 1


def test_an_unexpected_error_is_a_problem_500_and_releases_the_key(acme):
    c = acme.key("owner")
    data = text_csv(small_text_rows())
    with connection.execute_wrapper(FailOnInsert(RuntimeError("disk on fire"))):
        r = post_csv(c, data, "abort-2")
    assert r.status_code == 500 and r["Content-Type"].startswith("application/problem+json")
    assert "disk on fire" not in r.content.decode()
    assert not IdempotencyRecord.objects.for_tenant(acme.org).exists()
    assert post_csv(c, data, "abort-2").status_code == 201


def _claim_as_a_dead_holder(acme, client, data: bytes, key: str, age_s: float) -> None:
    """Claim ``key`` with the fingerprint the real request has, as a process that was then
    SIGKILLed would have left it, ``age_s`` seconds ago."""
    r = post_csv(client, data, "learn-fingerprint")
    assert r.status_code == 201
    learned = IdempotencyRecord.objects.for_tenant(acme.org).get(key="learn-fingerprint")
    idempotency_begin(
        organization_id=acme.org.pk,
        route=learned.route,
        key=key,
        fingerprint=learned.request_sha256,
    )
    IdempotencyRecord.objects.for_tenant(acme.org).filter(key=key).update(
        created_at=timezone.now() - timedelta(seconds=age_s)
    )


def test_a_live_claim_is_409_until_its_lease_lapses(acme, settings):
    settings.TRAINYARD_IDEMPOTENCY_LEASE_SECONDS = 300
    c = acme.key("owner")
    data = text_csv(small_text_rows())
    _claim_as_a_dead_holder(acme, c, data, "held", age_s=10)
    r = post_csv(c, data, "held")
    assert r.status_code == 409 and "still being processed" in r.json()["detail"]
    assert "lapses in" in r.json()["detail"]
    assert Dataset.objects.for_tenant(acme.org).count() == 1  # only the learning upload


def test_a_dead_holders_claim_is_taken_over_after_the_lease(acme, settings):
    settings.TRAINYARD_IDEMPOTENCY_LEASE_SECONDS = 300
    c = acme.key("owner")
    data = text_csv(small_text_rows())
    _claim_as_a_dead_holder(acme, c, data, "orphan", age_s=301)
    r = post_csv(c, data, "orphan")
    assert r.status_code == 201 and "Idempotent-Replayed" not in r
    again = post_csv(c, data, "orphan")  # and the taken-over key now replays as usual
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == r.json()["id"]
    assert Dataset.objects.for_tenant(acme.org).count() == 2


def test_an_expired_lease_with_a_different_body_is_still_422(acme, settings):
    settings.TRAINYARD_IDEMPOTENCY_LEASE_SECONDS = 300
    c = acme.key("owner")
    _claim_as_a_dead_holder(acme, c, text_csv(small_text_rows()), "orphan2", age_s=301)
    r = post_csv(c, text_csv(small_text_rows(13)), "orphan2")
    assert r.status_code == 422
