"""docker-compose.yml's shape: every queue consumed, GPU under its profile, health and gating."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from saas.celery import Queue

ROOT = Path(__file__).resolve().parents[2]
ONE_SHOT = {"migrate", "minio-bucket"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _queues(service: dict[str, Any]) -> set[str]:
    m = re.search(r"-Q\s+(\S+)", str(service.get("command", "")))
    return set(m.group(1).split(",")) if m else set()


def test_every_queue_has_a_consumer_and_gpu_only_under_its_profile(services) -> None:
    consumed = {q for svc in services.values() for q in _queues(svc)}
    assert {q.value for q in Queue} <= consumed
    for name, svc in services.items():
        if Queue.TRAINING_GPU.value in _queues(svc):
            assert svc.get("profiles") == ["gpu"], name
            devices = svc["deploy"]["resources"]["reservations"]["devices"]
            assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
            assert svc["build"]["target"] == "worker-gpu"
        else:
            assert "gpu" not in svc.get("profiles", []), name


def test_build_targets_exist_and_web_has_no_tensorflow(services) -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", dockerfile, flags=re.MULTILINE))
    for name, svc in services.items():
        if "build" in svc:
            assert svc["build"]["dockerfile"] == "docker/Dockerfile", name
            assert svc["build"]["target"] in targets, name
    web = dockerfile.split("AS web\n", 1)[1].split("\n# ---", 1)[0]
    assert "requirements/web.lock" in web and "worker.lock" not in web
    assert "tensorflow" not in web.lower()
    assert "tensorflow" not in (ROOT / "requirements" / "web.lock").read_text().lower()
    assert "USER 10001" in web


def test_long_running_services_have_healthcheck_and_restart(services) -> None:
    for name, svc in services.items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "no", name
            continue
        assert svc.get("healthcheck", {}).get("test"), name
        assert svc.get("restart") in ("unless-stopped", "always"), name


def test_app_services_wait_for_migrate_and_share_settings(services) -> None:
    for name in ("web", "serve", "worker-cpu", "worker-gpu", "worker-maintenance", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"] == {"condition": "service_completed_successfully"}, name
        env = services[name]["environment"]
        for var in (
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "TRAINYARD_S3_BUCKET",
            "TRAINYARD_S3_ENDPOINT_URL",
            "TRAINYARD_S3_ACCESS_KEY_ID",
            "TRAINYARD_S3_SECRET_ACCESS_KEY",
            "TRAINYARD_S3_ADDRESSING_STYLE",
        ):
            assert var in env, (name, var)
    settings_src = (ROOT / "saas" / "settings.py").read_text()
    env_names = {
        k
        for svc in services.values()
        if isinstance(svc.get("environment"), dict)
        for k in svc["environment"]
        if not k.startswith(("POSTGRES_", "MINIO_", "S3_", "TF_"))
    }
    for var in env_names:
        assert f'"{var}"' in settings_src, var
    assert services["serve"]["deploy"]["replicas"] == 2


def test_workers_health_check_pings_this_worker_by_its_default_name(services) -> None:
    # workers/health.py pings celery@<hostname>, the name a worker started without -n takes.
    for name in ("worker-cpu", "worker-gpu", "worker-maintenance"):
        svc = services[name]
        assert " -n " not in f" {svc['command']} ", name
        test = svc["healthcheck"]["test"]
        assert test[:4] == ["CMD", "python", "-m", "workers.health"], name
        timeout = float(test[test.index("--timeout") + 1])
        # The check's worst case (the broker connection, then the ping, each up to
        # --timeout, plus the interpreter's start-up) fits in what Docker allows it.
        limit = float(svc["healthcheck"]["timeout"].rstrip("s"))
        assert 2 * timeout + 5 <= limit, name
