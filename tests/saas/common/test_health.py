"""/health/live, /health/ready and /healthz against the real database, Redis and storage."""

from __future__ import annotations

import pytest
from django.db.migrations.loader import MigrationLoader

pytestmark = pytest.mark.django_db


def test_live_and_old_healthz_answer_without_dependencies(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # a dead Redis does not matter to liveness
    for url in ("/health/live", "/healthz"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}


def test_ready_is_200_when_everything_answers(client):
    response = client.get("/health/ready")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "migrations": "ok", "storage": "ok"},
    }


def test_ready_is_503_naming_redis_on_a_closed_port(client, settings):
    settings.REDIS_URL = "redis://:s3cretpw@127.0.0.1:1/0"
    response = client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["checks"]["redis"].startswith("Unavailable: unreachable")
    assert body["checks"]["database"] == "ok"
    assert "s3cretpw" not in response.content.decode()


def test_ready_is_503_naming_an_unapplied_migration(client, monkeypatch):
    # The loader is the one thing faked: pretend the last jobs migration is not recorded.
    real = MigrationLoader.build_graph

    def build_graph(self):
        real(self)
        leaf = max(k for k in self.applied_migrations if k[0] == "jobs")
        del self.applied_migrations[leaf]

    monkeypatch.setattr(MigrationLoader, "build_graph", build_graph)
    response = client.get("/health/ready")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["migrations"].startswith("Unavailable: 1 unapplied: jobs.")
    assert checks["database"] == "ok"
