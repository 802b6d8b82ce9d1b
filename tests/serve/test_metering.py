"""Metering exactness in-process: every answered input reaches the ledger once, as one event
per (window, key, model) with an idempotency key, however many flushers run at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_create
from saas.billing.models import RateCard
from saas.common.actor import Actor
from saas.inference.services import prediction_windows_flush
from saas.metering.models import UsageEvent
from saas.metering.windows import INDEX_KEY, group_field, window_key
from tests.serve.conftest import register_text_model, serve_app
from tests.serve.test_predict import bearer, ledger, wait_ledger

pytestmark = pytest.mark.tf

SIZES = [1, 2, 3, 5, 8, 13, 1, 7, 256, 4]


def predict(client, model_id: str, key: str, n: int):
    r = client.post(
        f"/v1/models/{model_id}/predict",
        json={"inputs": [f"loved it {i}" for i in range(n)]},
        headers=bearer(key),
    )
    assert r.status_code == 200, r.text
    return r


def events(org) -> list[UsageEvent]:
    return list(UsageEvent.objects.for_tenant(org).filter(meter="predictions"))


def test_the_ledger_holds_exactly_the_answered_inputs(
    serve_client, tenant, text_model, text_saved_model
):
    keys = {tenant.key: ApiKey.objects.for_tenant(tenant.org).get().pk}
    issued = api_key_create(organization=tenant.org, name="second", actor=Actor.system())
    second = issued.secret
    keys[second] = issued.api_key.pk
    other_model = register_text_model(tenant.org, text_saved_model, "mdl_servetext2")
    expected: Counter[tuple[str, str]] = Counter()
    cold_answers = 0
    cpu_before = time.process_time()  # the TestClient runs the data plane in this process
    for i, n in enumerate(SIZES):
        key = tenant.key if i % 2 else second
        model = text_model if i % 3 else other_model
        r = predict(serve_client, model, key, n)
        cold_answers += r.json()["usage"]["cold_start"]
        expected[(key, model)] += n
    total = sum(SIZES)
    assert wait_ledger(tenant.org, total) == total
    cpu_used = time.process_time() - cpu_before
    time.sleep(2.5)  # nothing more arrives
    rows = events(tenant.org)
    # Inference cost is CPU seconds (serve.cpumeter): some, and never more than the process
    # spent; each event's cost is its CPU seconds at the rate card's CPU price.
    cpu = sum(e.dimensions["cpu_seconds"] for e in rows)
    assert 0 < cpu <= cpu_used
    rate = RateCard.objects.order_by("-effective_from").first().cpu_second_cost
    for e in rows:
        expected_cost = Decimal(str(e.dimensions["cpu_seconds"])) * rate
        assert abs(e.compute_cost - expected_cost) < Decimal("0.0000001")
    assert sum(int(e.quantity) for e in rows) == total
    # One event per (window, key, model), each with its own idempotency key.
    groups = Counter((e.occurred_at, e.api_key_id, e.model_id) for e in rows)
    assert set(groups.values()) == {1}
    assert len({e.idempotency_key for e in rows}) == len(rows)
    for e in rows:
        assert e.source_type == "prediction_window"
        assert e.idempotency_key == f"prediction_window:{e.source_id}"
        assert e.dimensions["principal"] == e.api_key_id and e.dimensions["window_seconds"] == 1
    by_group: Counter[tuple[str, str]] = Counter()
    for e in rows:
        by_group[(e.api_key_id, e.model_id)] += int(e.quantity)
    assert by_group == Counter({(keys[k], m): n for (k, m), n in expected.items()})
    assert sum(e.dimensions["requests"] for e in rows) == len(SIZES)
    # The ledger's cold starts are exactly the answers that said cold_start (at least the
    # first model's first; the second may be pre-warmed when it is registered).
    assert cold_answers >= 1
    assert sum(e.dimensions["cold_starts"] for e in rows) == cold_answers


def _flush_from_threads(threads: int) -> list[int]:
    """``prediction_windows_flush`` from ``threads`` threads released at once; what each
    wrote."""
    barrier = threading.Barrier(threads)

    def one(_i: int) -> int:
        barrier.wait()
        try:
            return prediction_windows_flush()
        finally:
            connection.close()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(threads)))


def test_concurrent_flushes_of_synthetic_windows_never_double_count(
    transactional_db, clean_redis, tenant, text_saved_model
):
    """200 closed windows × 3 groups in Redis, flushed by 4 threads at once, twice: the
    ledger holds each count once."""
    org = tenant.org.pk
    models = [register_text_model(tenant.org, text_saved_model, f"mdl_flush{i}") for i in range(3)]
    key = ApiKey.objects.for_tenant(tenant.org).get().pk
    now = int(clean_redis.time()[0])
    expected = 0
    for w in range(now - 400, now - 200):
        for model, n in zip(models, (3, 1, w % 7 + 1), strict=True):
            clean_redis.hset(
                window_key(w),
                mapping={
                    group_field(organization_id=org, principal=key, model_id=model, measure="n"): n,
                    group_field(organization_id=org, principal=key, model_id=model, measure="r"): 1,
                    group_field(
                        organization_id=org, principal=key, model_id=model, measure="us"
                    ): 1500,
                },
            )
            expected += n
        clean_redis.zadd(INDEX_KEY, {str(w): w})
    written = _flush_from_threads(4)
    assert sum(written) == 600, written
    assert _flush_from_threads(4) == [0, 0, 0, 0]
    assert prediction_windows_flush() == 0
    assert ledger(tenant.org) == expected
    assert clean_redis.zcard(INDEX_KEY) == 0
    assert not list(clean_redis.scan_iter("dp:mw:[0-9]*"))


def test_a_replica_stopped_mid_stream_leaves_its_windows_to_any_flusher(
    transactional_db, clean_redis, tenant, text_model
):
    """Counts of windows still open when a replica stops stay in Redis; four flushers at once
    then write them exactly once."""
    with serve_app(flush_interval_s=3600) as c:  # its own loop never runs
        for n in SIZES:
            predict(c, text_model, tenant.key, n)
    # The replica's final flush wrote the closed windows (maybe none); the rest wait.
    time.sleep(2.2)
    _flush_from_threads(4)
    _flush_from_threads(4)
    assert ledger(tenant.org) == sum(SIZES)
    assert clean_redis.zcard(INDEX_KEY) == 0
