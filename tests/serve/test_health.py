"""``GET /v2/health/ready`` names each of the data plane's checks (Redis, PostgreSQL as the key
cache reaches it, model storage) against real dependencies made unreachable for real: a Redis
URL on a closed port, the database's port pointed at a closed one, a storage root that is a
file. No connection string ever reaches the answer."""

from __future__ import annotations

import time

from django.db import connections

from tests.serve.conftest import serve_app
from tests.serve.test_predict import assert_problem

ALL_OK = {"redis": "ok", "database": "ok", "storage": "ok"}


def _ready_within(client, seconds: float = 5.0):
    """The first 200 of ``/v2/health/ready`` within ``seconds`` (the key cache refreshes
    once first), else the last answer."""
    deadline = time.monotonic() + seconds
    while True:
        r = client.get("/v2/health/ready")
        if r.status_code == 200 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def _failing(client, name: str, seconds: float = 5.0) -> dict:
    """The 503 problem once check ``name`` fails (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while True:
        r = client.get("/v2/health/ready")
        if r.status_code == 503 and r.json()["checks"][name] != "ok":
            return assert_problem(r, 503)
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


def test_ready_lists_every_check_as_ok(serve_client):
    r = _ready_within(serve_client)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ready"] is True and body["checks"] == ALL_OK
    assert body["models_loaded"] == 0


def test_not_ready_naming_redis_on_a_closed_port(transactional_db, settings, closed_port):
    from saas.inference import services

    settings.REDIS_URL = f"redis://:s3cretpw@127.0.0.1:{closed_port}/0"
    try:
        with serve_app() as c:
            time.sleep(0.5)  # the key cache has refreshed: only Redis fails
            problem = _failing(c, "redis")
            assert problem["ready"] is False
            assert problem["checks"]["redis"].startswith("unreachable (")
            assert problem["checks"]["database"] == "ok" and problem["checks"]["storage"] == "ok"
            assert problem["detail"] == "Failing checks: redis."
            assert "s3cretpw" not in c.get("/v2/health/ready").text
            assert str(closed_port) not in c.get("/v2/health/ready").text
            assert c.get("/v2/health/live").status_code == 200
    finally:
        services._client.cache_clear()  # in case the flusher cached a client for that URL


def test_not_ready_naming_the_database_when_postgres_is_unreachable(
    transactional_db, clean_redis, closed_port, monkeypatch
):
    # The data plane's own database threads connect from this settings dict (each thread
    # opens its own connection from it); this test's thread keeps its open connection.
    db = connections.settings["default"]
    with monkeypatch.context() as m:
        m.setitem(db, "HOST", "127.0.0.1")
        m.setitem(db, "PORT", str(closed_port))
        m.setitem(db, "PASSWORD", "pg-s3cret")
        with serve_app() as c:
            problem = _failing(c, "database")
            assert problem["checks"]["database"] == "not reached yet (OperationalError)"
            assert problem["checks"]["redis"] == "ok" and problem["checks"]["storage"] == "ok"
            assert problem["detail"] == "Failing checks: database."
            text = c.get("/v2/health/ready").text
            assert "pg-s3cret" not in text and str(closed_port) not in text


def test_not_ready_naming_storage_when_its_root_cannot_be_listed(serve_client, settings, tmp_path):
    assert _ready_within(serve_client).status_code == 200
    not_a_dir = tmp_path / "storage-is-a-file"
    not_a_dir.write_bytes(b"")
    settings.MEDIA_ROOT = not_a_dir  # the default storage follows MEDIA_ROOT
    problem = _failing(serve_client, "storage")
    assert problem["checks"] == {**ALL_OK, "storage": "unreadable (NotADirectoryError)"}
    assert problem["detail"] == "Failing checks: storage."
    settings.MEDIA_ROOT = tmp_path / "storage"  # back: ready again
    assert _ready_within(serve_client).status_code == 200
