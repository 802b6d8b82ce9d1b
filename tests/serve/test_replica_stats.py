"""Each data-plane replica publishes its figures to Redis; the console reads them back."""

from __future__ import annotations

import os
import socket
import time

import pytest

from saas.inference.replicas import data_plane_replicas
from serve.replica_stats import p99
from tests.serve.conftest import serve_app

INF = float("inf")


def test_p99_is_the_bucket_holding_the_99th_percentile_of_the_window():
    prev = {0.01: 10, 0.1: 10, 1.0: 10, INF: 10}
    # 100 new requests: 98 under 10 ms, 1 under 100 ms, 1 under 1 s.
    now = {0.01: 108, 0.1: 109, 1.0: 110, INF: 110}
    assert p99(prev, now) == (0.1, 100)
    assert p99(now, now) == (None, 0)  # no traffic in the window
    assert p99({}, {0.01: 0, INF: 3}) == (None, 3)  # all beyond the last finite bound


@pytest.mark.tf
def test_a_running_replica_shows_its_requests_cold_starts_and_models(
    transactional_db, clean_redis, tenant, text_model
):
    with serve_app() as c:
        r = c.post(
            f"/v1/models/{text_model}/predict",
            json={"inputs": ["great film, loved it"]},
            headers={"Authorization": f"Bearer {tenant.key}"},
        )
        assert r.status_code == 200, r.text
        # The Prometheus registry is per process, so earlier tests' counts are in it too, and
        # the loop publishes once as it starts (before this request): wait for a snapshot
        # taken after the prediction.
        answered_at = time.time()
        deadline = time.monotonic() + 12
        replicas: list = []
        while time.monotonic() < deadline:
            # This process's replica only: others (an e2e stack's) may publish to this Redis too.
            mine = f"{socket.gethostname()}:{os.getpid()}"
            replicas = [
                x
                for x in data_plane_replicas() or []
                if x["replica"] == mine and x["at"] > answered_at
            ]
            if replicas:
                break
            time.sleep(0.5)
        assert replicas, "no replica published its stats"
        (rep,) = replicas
        assert rep["cold_starts"] >= 1 and rep["models_loaded"] == 1 and rep["model_bytes"] > 0
        assert rep["p99_seconds"] is not None and rep["p99_seconds"] > 0
