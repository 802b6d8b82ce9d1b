"""Flower, as docker-compose runs it (``celery -A workers.celery_app flower``), serves
Prometheus text on ``/metrics``: a real Flower process against the test Redis, on a free
loopback port (about two seconds to start)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scripts.stack import BIN, ROOT, free_port


@pytest.fixture
def flower(settings, tmp_path) -> Iterator[str]:
    """The base URL of a Flower started for the test (stopped afterwards)."""
    port = free_port()
    log = open(tmp_path / "flower.log", "wb")
    proc = subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "workers.celery_app",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            f"--broker={settings.REDIS_URL}",
        ],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": settings.REDIS_URL},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "flower.log").read_text()
            try:
                if requests.get(f"{url}/healthcheck", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "flower did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_flower_serves_prometheus_metrics(flower: str) -> None:
    r = requests.get(f"{flower}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    # Flower's own families (per worker and task once events arrive), beside the process's.
    assert families["flower_events"].type == "counter"
    assert families["flower_worker_online"].type == "gauge"
    assert families["flower_task_runtime_seconds"].type == "histogram"
    assert "python_gc_objects_collected" in families
