"""``python -m workers.health``, the workers' container health check, as the container runs it
(a subprocess), against a real Celery worker on the test Redis: 0 while that worker answers,
1 within its timeout when no worker of that name is up or the broker is unreachable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.stack import ROOT, Stack

#: A queue nobody sends to: the worker started here consumes nothing of other tests'.
QUEUE = "health-check-test"


def health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.health", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def worker(settings, tmp_path: Path):
    """A real worker named ``hc-<pid>@<host>`` on :data:`QUEUE`; yields ``(stack, node)``."""
    name = f"hc-{os.getpid()}"
    stack = Stack(env={"REDIS_URL": settings.REDIS_URL}, log_dir=tmp_path)
    try:
        stack.start_worker(name, QUEUE)
        yield stack, f"{name}@{socket.gethostname()}"
    finally:
        stack.stop()


def test_exits_0_while_the_worker_answers_and_1_once_it_is_gone(worker, settings):
    stack, node = worker
    env = {"REDIS_URL": settings.REDIS_URL}
    deadline = time.monotonic() + 60
    while True:  # the worker answers once it consumes (a few seconds of start-up)
        r = health("--node", node, "--timeout", "1", env=env)
        if r.returncode == 0:
            break
        assert stack.procs[f"worker-{node.split('@')[0]}"].poll() is None, "the worker exited"
        assert time.monotonic() < deadline, r.stderr
        time.sleep(0.5)
    assert r.stdout.strip() == f"ok: {node} answered"
    # %h is this host, as in `celery worker -n`.
    assert health("--node", node.split("@")[0] + "@%h", "--timeout", "2", env=env).returncode == 0

    stack.stop()  # warm shutdown: the worker stops answering
    r = health("--node", node, "--timeout", "2", env=env)
    assert r.returncode == 1 and f"no answer from {node}" in r.stderr


def test_exits_1_within_its_timeout_when_no_worker_has_that_name(settings):
    started = time.monotonic()
    env = {"REDIS_URL": settings.REDIS_URL}
    r = health("--node", f"nobody-{os.getpid()}@%h", "--timeout", "2", env=env)
    elapsed = time.monotonic() - started
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"unhealthy: no answer from nobody-{os.getpid()}@{socket.gethostname()} within 2 s"
    )
    assert elapsed < 2 + 5, elapsed  # the ping's 2 s plus the interpreter's start-up


def test_the_default_node_is_celerys_default_name(settings):
    # A worker started without -n (docker-compose's) is celery@<hostname>.
    r = health("--timeout", "1", env={"REDIS_URL": settings.REDIS_URL})
    assert r.returncode == 1
    assert f"no answer from celery@{socket.gethostname()} within 1 s" in r.stderr


def test_exits_1_naming_the_broker_when_redis_is_unreachable(closed_port):
    started = time.monotonic()
    r = health("--timeout", "2", env={"REDIS_URL": f"redis://:br0ker-pw@127.0.0.1:{closed_port}/0"})
    assert r.returncode == 1
    assert r.stderr.strip() == "unhealthy: broker unreachable (OperationalError)"
    assert "br0ker-pw" not in r.stdout + r.stderr
    assert time.monotonic() - started < 2 + 5
