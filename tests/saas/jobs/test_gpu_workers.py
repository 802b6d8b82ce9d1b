"""A GPU job says ``wait_reason: no_gpu_workers`` while no worker serves ``training-gpu``.

Against the real Redis of ``REDIS_URL``: the registry is the sorted set the workers' main
processes write (``saas.jobs.liveness``); the end-to-end test starts a real Celery worker.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from saas.billing.services import billing_plan_change
from saas.common.actor import Actor
from saas.jobs import liveness
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db
GPU_KEY = "trainyard:workers:training-gpu"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _empty_registry():
    # The GPU liveness registry lives in Redis: `make test` always sets REDIS_URL, so a
    # missing one is a broken run, not a reason to skip.
    assert settings.REDIS_URL, "these tests need REDIS_URL (make test sets it)"
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete(GPU_KEY, "trainyard:workers:training-cpu")
    liveness.liveness_cache_clear()
    yield client
    client.delete(GPU_KEY, "trainyard:workers:training-cpu")
    liveness.liveness_cache_clear()


def on_pro(org) -> None:
    """The free plan refuses GPU time (its GPU quota is 0); pro sells it."""
    billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())


def gpu_job(tenant) -> dict:
    on_pro(tenant.org)
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    r = tenant.client.post(
        "/v1/training-jobs", {"dataset": ds["id"], "device": "gpu"}, format="json"
    )
    assert r.status_code == 201, r.content
    return r.json()


def test_gpu_job_says_no_gpu_workers_until_one_beats(tenant):
    job = gpu_job(tenant)
    assert job["status"] == "queued" and job["wait_reason"] == "no_gpu_workers"
    page = tenant.client.get(f"/v1/training-jobs/{job['id']}").json()
    assert page["wait_reason"] == "no_gpu_workers"
    listed = tenant.client.get("/v1/training-jobs").json()["data"]
    assert [j["wait_reason"] for j in listed] == ["no_gpu_workers"]

    liveness.worker_beat(hostname="gpu1@test", queues=["training-gpu"])
    liveness.liveness_cache_clear()
    assert liveness.workers_alive(queue="training-gpu") == 1
    assert tenant.client.get(f"/v1/training-jobs/{job['id']}").json()["wait_reason"] == ("capacity")


def test_a_worker_whose_beats_stopped_is_not_alive(tenant, settings):
    settings.TRAINYARD_WORKER_BEAT_SECONDS = 10
    liveness.worker_beat(hostname="gpu1@test", queues=["training-gpu"], now=time.time() - 31)
    job = gpu_job(tenant)
    assert job["wait_reason"] == "no_gpu_workers"  # last beat 31 s ago: three intervals passed
    liveness.worker_beat(hostname="gpu2@test", queues=["training-gpu"], now=time.time() - 29)
    liveness.liveness_cache_clear()
    assert liveness.workers_alive(queue="training-gpu") == 1
    liveness.worker_forget(hostname="gpu2@test", queues=["training-gpu"])
    liveness.liveness_cache_clear()
    assert liveness.workers_alive(queue="training-gpu") == 0


def test_cpu_jobs_and_other_queues_are_unaffected(tenant):
    liveness.worker_beat(hostname="cpu1@test", queues=["training-cpu"])
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    cpu = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    assert cpu["wait_reason"] == "capacity"
    assert gpu_job(tenant)["wait_reason"] == "no_gpu_workers"


def test_unreachable_redis_means_unknown_not_an_error(tenant, settings, closed_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    assert liveness.workers_alive(queue="training-gpu") is None
    job = gpu_job(tenant)  # accepted, and labelled as before rather than a 5xx
    assert job["wait_reason"] == "capacity"


def test_dashboard_explains_the_wait(acme):
    on_pro(acme.org)
    client = acme.key("owner")
    ds = upload(client, text_csv(small_text_rows())).json()
    job = client.post(
        "/v1/training-jobs", {"dataset": ds["id"], "device": "gpu"}, format="json"
    ).json()
    page = acme.session("owner").get(f"/app/training/{job['id']}")
    assert page.status_code == 200
    assert "no GPU worker is running" in page.content.decode()


@pytest.mark.e2e
def test_a_real_gpu_worker_registers_and_deregisters(_empty_registry, settings, tmp_path):
    env = {
        **os.environ,
        "TRAINYARD_WORKER_BEAT_SECONDS": "0.5",
        "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            "training-gpu",
            "-c",
            "1",
            "-n",
            f"gpu-e2e-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "w.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _empty_registry.zcard(GPU_KEY):
            time.sleep(0.2)
        assert _empty_registry.zcard(GPU_KEY) == 1, (tmp_path / "w.log").read_text()
    finally:
        worker.terminate()
        worker.wait(30)
    assert _empty_registry.zcard(GPU_KEY) == 0  # a clean shutdown deregisters at once
