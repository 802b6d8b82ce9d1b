"""A live Trainyard for end-to-end tests: gunicorn, the data plane and Celery workers on the
test database.

The processes share the pytest-django test database (PostgreSQL) and a Redis database of
their own (``E2E_REDIS_URL``), and store artifacts in a temporary folder. The data plane
(``python -m serve``) takes the public port and forwards what it does not answer to gunicorn,
as ``make run`` does; predictions are counted in Redis and reach the ledger when a closed
metering window is flushed (about 2–3 s), so ledger assertions wait with
:func:`wait_predictions`. A tiny MobileNetV2 hub module is built once per session with the
``build_hub_module`` management command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from saas.celery import Queue
from scripts.stack import ROOT, Stack

E2E_REDIS_URL = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="session")
def hub_module(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hub") / "mobilenet_v2_tiny"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "build_hub_module",
            str(path),
            "--image-size",
            "32",
            "--alpha",
            "0.35",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture(scope="session")
def stack_env(django_db_setup, django_db_blocker, hub_module, tmp_path_factory) -> dict[str, str]:
    db = django_settings.DATABASES["default"]
    import redis

    redis.Redis.from_url(E2E_REDIS_URL).flushdb()
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": E2E_REDIS_URL,
        "TRAINYARD_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        # The default (file) email backend writes here, not into the checkout's var/mail.
        "EMAIL_FILE_PATH": str(tmp_path_factory.mktemp("mail")),
        "TRAINYARD_MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("model-cache")),
        "TRAINYARD_HUB_HANDLES": json.dumps({"mobilenet_v2": str(hub_module)}),
        "TRAINYARD_HEARTBEAT_STALE_SECONDS": "6",
        "TRAINYARD_REAPER_INTERVAL_SECONDS": "2",
        "CELERY_VISIBILITY_TIMEOUT": "120",
        "TRAINYARD_PREDICT_TIMEOUT_SECONDS": "60",
        # The machine is shared: a request waits for its model to load rather than time out.
        "TRAINYARD_SERVE_DEADLINE_SECONDS": "120",
    }


def wait_windows_flushed(timeout: float = 15.0) -> bool:
    """Wait until no metering window is pending in the e2e Redis (True), or ``timeout``.

    Call before a test's rows are deleted (``transactional_db``'s flush): a window still
    counting a deleted organisation could never be written (its foreign keys are gone), and it
    would hold back every later window in the flushers' queue."""
    import redis

    from saas.metering.windows import INDEX_KEY

    r = redis.Redis.from_url(E2E_REDIS_URL)
    deadline = time.monotonic() + timeout
    while r.zcard(INDEX_KEY):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def ledger_predictions(org) -> int:
    """Predictions in ``org``'s ledger (what the metering flushes have written so far)."""
    from django.db.models import Sum

    from saas.metering.models import Meter, UsageEvent

    total = (
        UsageEvent.objects.for_tenant(org)
        .filter(meter=Meter.PREDICTIONS)
        .aggregate(n=Sum("quantity"))["n"]
    )
    return int(total or 0)


def wait_predictions(org, expected: int, timeout: float = 10.0) -> int:
    """Poll the ledger until ``org`` has at least ``expected`` predictions or ``timeout``
    seconds pass; returns the last total (a count still in Redis is flushed within ~3 s)."""
    deadline = time.monotonic() + timeout
    while True:
        total = ledger_predictions(org)
        if total >= expected or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("logs")
    with Stack(env=stack_env, log_dir=log_dir) as s:
        s.start_web()
        s.start_serve()
        s.start_worker("training", Queue.TRAINING_CPU)
        s.start_worker("maintenance", Queue.MAINTENANCE, beat=True)  # beat runs the reaper
        s.wait_web()
        print(f"\ne2e stack logs: {log_dir}")
        yield s


class Api:
    """A requests session holding an API key, failing loudly on an unexpected status."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, expect: int = 200, **kw):
        r = self.http.request(method, self.base + path, timeout=90, **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text[:1000]}"
        return r

    def json(self, method: str, path: str, expect: int = 200, **kw) -> dict:
        return self.call(method, path, expect, **kw).json()

    def wait(
        self,
        job_id: str,
        statuses=("succeeded", "failed", "cancelled"),
        timeout: float = 240,
        predicate=None,
    ) -> tuple[dict, list[tuple[str, int]]]:
        """Poll a job until its status is in ``statuses`` (and ``predicate(job)``); returns the job
        and the (status, epoch) states seen on the way."""
        seen: list[tuple[str, int]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.json("GET", f"/v1/training-jobs/{job_id}")
            state = (job["status"], job["progress"]["epoch"])
            if not seen or seen[-1] != state:
                seen.append(state)
            if job["status"] in statuses and (predicate is None or predicate(job)):
                return job, seen
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} stuck: {seen}")


@pytest.fixture
def api(stack, transactional_db):
    from saas.apikeys.services import api_key_create
    from saas.common.actor import Actor
    from saas.tenancy.services import organization_create

    slug = f"e2e-{time.monotonic_ns()}"
    org = organization_create(
        slug=slug, name="E2E", owner_email=f"{slug}@e2e.test", actor=Actor.system()
    )
    client = Api(stack.base_url, api_key_create(organization=org, actor=Actor.system()).secret)
    client.org = org
    yield client
    wait_windows_flushed()
