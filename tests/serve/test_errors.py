"""Every answer the data plane gives on an error is problem+json: an uncaught exception in a
route (Starlette's ServerErrorMiddleware would answer plain text), an unknown path, a wrong
method. The app is the real one from ``create_app``; its lifespan is not run (no model, no
Redis needed for these paths)."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.routing import Route
from starlette.testclient import TestClient

from serve.app import create_app
from serve.errors import Problem


async def _boom(request: Request):
    raise RuntimeError("secret internals /var/lib/x")


async def _refuse(request: Request):
    raise Problem(418, "teapot", "A teapot", "Raised outside a route's own try.")


@pytest.fixture
def client() -> TestClient:
    app = create_app()
    app.router.routes.extend(
        [Route("/boom", _boom, methods=["GET"]), Route("/refuse", _refuse, methods=["GET"])]
    )
    return TestClient(app, raise_server_exceptions=False)


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://trainyard.dev/problems/")
    return body


def test_an_uncaught_exception_is_a_500_problem_without_internals(client):
    body = _problem(client.get("/boom"), 500)
    assert body["type"].endswith("/internal-error")
    assert "secret" not in str(body) and "RuntimeError" not in str(body)


def test_a_problem_raised_anywhere_keeps_its_shape(client):
    assert _problem(client.get("/refuse"), 418)["title"] == "A teapot"


def test_an_unknown_path_is_a_404_problem(client):
    assert _problem(client.get("/nope/%00/%ff"), 404)["type"].endswith("/not-found")


def test_a_wrong_method_is_a_405_problem_with_allow(client):
    r = client.get("/v1/models/mdl_x/predict")
    _problem(r, 405)
    assert r.headers["allow"] == "POST"
