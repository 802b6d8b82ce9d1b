"""The data plane's runtime: adaptive batching across concurrent requests (each gets its own
rows), one bad input failing only its request, executions bounded by ``max_batch``, the
per-tenant in-flight bound, and the model LRU bounded by bytes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_tenant, png_bytes, small_text_rows
from tests.serve.conftest import register_text_model, serve_app
from tests.serve.test_predict import assert_problem, b64, bearer, corrupt_png, wait_ledger

pytestmark = pytest.mark.tf

TEXTS = [text for text, _label in small_text_rows(8)]  # 16 distinct texts


def batches(client, model_id: str) -> tuple[int, float, int]:
    """``(executions, inputs executed, executions of exactly 1 input)`` for ``model_id`` from
    ``/metrics`` (process-wide counters: compare before and after)."""
    count = total = ones = 0
    r = client.get("/metrics")
    assert r.status_code == 200
    for family in text_string_to_metric_families(r.text):
        if family.name != "trainyard_serve_batch_inputs":
            continue
        for s in family.samples:
            if s.labels.get("model") != model_id:
                continue
            if s.name.endswith("_count"):
                count = int(s.value)
            elif s.name.endswith("_sum"):
                total = s.value
            elif s.name.endswith("_bucket") and s.labels["le"] == "1.0":
                ones = int(s.value)
    return count, total, ones


def concurrently(n: int, fn) -> list:
    barrier = threading.Barrier(n)

    def one(i: int):
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_concurrent_requests_are_batched_and_each_gets_its_own_rows(
    transactional_db, clean_redis, tenant, text_model
):
    url = f"/v1/models/{text_model}/predict"
    with serve_app(max_wait_ms=50) as c:
        alone = []
        for text in TEXTS:  # one at a time: batches of one
            r = c.post(url, json={"inputs": [text]}, headers=bearer(tenant.key))
            assert r.status_code == 200, r.text
            alone.append(r.json()["predictions"][0])
        before = batches(c, text_model)
        answers = concurrently(
            len(TEXTS),
            lambda i: c.post(url, json={"inputs": [TEXTS[i]]}, headers=bearer(tenant.key)),
        )
        after = batches(c, text_model)
        assert [a.status_code for a in answers] == [200] * len(TEXTS)
        executions = after[0] - before[0]
        assert after[1] - before[1] == len(TEXTS)
        assert executions < len(TEXTS), (before, after)  # some requests shared an execution
        assert (after[0] - after[2]) - (before[0] - before[2]) >= 1  # a batch of more than one
        for text, single, answer in zip(TEXTS, alone, answers, strict=True):
            (batched,) = answer.json()["predictions"]
            assert batched["label"] == single["label"], text
            assert batched["scores"] == pytest.approx(single["scores"], abs=1e-5), text
        assert wait_ledger(tenant.org, 2 * len(TEXTS)) == 2 * len(TEXTS)


def test_a_large_request_runs_in_executions_of_max_batch(
    transactional_db, clean_redis, tenant, text_model
):
    with serve_app(max_batch=64) as c:
        url = f"/v1/models/{text_model}/predict"
        assert c.post(url, json={"inputs": ["warm"]}, headers=bearer(tenant.key)).is_success
        before = batches(c, text_model)
        inputs = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(256)]
        r = c.post(url, json={"inputs": inputs}, headers=bearer(tenant.key))
        assert r.status_code == 200 and len(r.json()["predictions"]) == 256
        after = batches(c, text_model)
        assert (after[0] - before[0], after[1] - before[1]) == (4, 256)
        # Rows come back in the order sent, across the chunks.
        single = c.post(url, json={"inputs": [inputs[200]]}, headers=bearer(tenant.key))
        assert r.json()["predictions"][200]["scores"] == pytest.approx(
            single.json()["predictions"][0]["scores"], abs=1e-5
        )


def test_an_undecodable_image_in_a_batch_fails_only_its_own_request(
    transactional_db, clean_redis, tenant, image_model
):
    url = f"/v1/models/{image_model}/predict"
    good = {"inputs": [{"image_base64": b64(png_bytes(30))}]}
    bad = {"inputs": [{"image_base64": b64(corrupt_png())}]}
    with serve_app(max_wait_ms=100) as c:
        assert c.post(url, json=good, headers=bearer(tenant.key)).status_code == 200  # warm
        before = batches(c, image_model)
        answers = concurrently(
            8, lambda i: c.post(url, json=bad if i == 3 else good, headers=bearer(tenant.key))
        )
        after = batches(c, image_model)
        statuses = [a.status_code for a in answers]
        assert statuses == [200, 200, 200, 400, 200, 200, 200, 200], statuses
        assert_problem(answers[3], 400)
        assert after[0] - before[0] < 8  # the bad one shared an execution with good ones
        scores = {
            tuple(sorted(a.json()["predictions"][0]["scores"].items()))
            for a in answers
            if a.status_code == 200
        }
        assert len(scores) == 1  # the same image, the same answer, batched or retried alone
        assert wait_ledger(tenant.org, 8) == 8


def test_one_tenants_requests_in_flight_are_bounded(
    transactional_db, clean_redis, tenant, text_model, text_saved_model
):
    """With at most 1 request of a tenant in flight per replica (and batches held 300 ms), a
    tenant's second concurrent request is a 429 while another tenant's is served."""
    other = make_tenant("globex")
    theirs = register_text_model(other.org, text_saved_model, "mdl_othertenant1")
    with serve_app(tenant_inflight=1, max_wait_ms=300) as c:
        for key, model in ((tenant.key, text_model), (other.key, theirs)):
            r = c.post(f"/v1/models/{model}/predict", json={"inputs": ["w"]}, headers=bearer(key))
            assert r.status_code == 200  # warm

        def one(i: int):
            key, model = [(tenant.key, text_model), (tenant.key, text_model), (other.key, theirs)][
                i
            ]
            return c.post(
                f"/v1/models/{model}/predict", json={"inputs": ["x"]}, headers=bearer(key)
            )

        answers = concurrently(3, one)
        mine = sorted(a.status_code for a in answers[:2])
        assert mine == [200, 429], [a.text for a in answers]
        refused = next(a for a in answers[:2] if a.status_code == 429)
        assert "in flight" in assert_problem(refused, 429)["detail"]
        assert refused.headers["Retry-After"] == "1"
        assert answers[2].status_code == 200


def test_the_model_lru_is_bounded_by_bytes(
    transactional_db, clean_redis, tenant, text_model, text_saved_model
):
    from workers.ml.model_cache import directory_size

    size = directory_size(text_saved_model[0])
    second = register_text_model(tenant.org, text_saved_model, "mdl_servetext2")

    def cold(c, model_id: str) -> bool:
        r = c.post(
            f"/v1/models/{model_id}/predict", json={"inputs": ["x"]}, headers=bearer(tenant.key)
        )
        assert r.status_code == 200, r.text
        return r.json()["usage"]["cold_start"]

    def loaded(c, model_id: str) -> bool:
        return c.get(f"/v2/models/{model_id}/ready", headers=bearer(tenant.key)).json()["loaded"]

    with serve_app(cache_bytes=size + size // 2) as c:  # room for one model, not two
        assert [cold(c, text_model), cold(c, text_model)] == [True, False]
        assert cold(c, second) is True  # evicts the first
        assert (loaded(c, text_model), loaded(c, second)) == (False, True)
        assert cold(c, text_model) is True
        assert cold(c, text_model) is False
        assert c.app.state.plane.store.total_bytes <= size + size // 2
    with serve_app(cache_bytes=size // 2) as c:  # too big to keep: served, never cached
        assert [cold(c, text_model), cold(c, text_model)] == [True, True]
        assert not loaded(c, text_model)


def test_a_model_registered_while_serving_is_pre_warmed(serve_client, tenant, text_saved_model):
    """``model_register`` announces the model on ``dp:prewarm``; a running replica loads it
    before its first prediction, which is then not a cold start."""
    import time

    model = register_text_model(tenant.org, text_saved_model, "mdl_prewarm1")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready = serve_client.get(f"/v2/models/{model}/ready", headers=bearer(tenant.key))
        if ready.json().get("loaded"):
            break
        time.sleep(0.1)
    assert ready.json() == {"name": model, "ready": True, "loaded": True}
    r = serve_client.post(
        f"/v1/models/{model}/predict", json={"inputs": ["x"]}, headers=bearer(tenant.key)
    )
    assert r.status_code == 200 and r.json()["usage"]["cold_start"] is False
