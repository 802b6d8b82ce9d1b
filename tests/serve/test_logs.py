"""The data plane's logs: JSON lines, ``X-Request-ID`` in and out, the predict context.

The real app in-process (Starlette's TestClient). A predict whose admission cannot reach
Redis (``REDIS_URL`` pointed at a closed port) is the request that logs: its warning must
carry the request's id, the caller's organisation and the model, and none of the inputs.
"""

from __future__ import annotations

import re

import pytest

import serve.app  # noqa: F401  (imported first: its django.setup() re-applies LOGGING)
from tests.serve.conftest import register_text_model, serve_app

INPUT = "wombat quokka 5521 never-logged"


def test_every_answer_has_a_request_id_and_an_incoming_one_is_kept(serve_client):
    r = serve_client.get("/healthz/serve")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert r.headers.get_list("x-request-id") == [r.headers["x-request-id"]]
    r = serve_client.get("/healthz/serve", headers={"X-Request-ID": "edge-9c1"})
    assert r.headers["x-request-id"] == "edge-9c1"
    r = serve_client.get("/healthz/serve", headers={"X-Request-ID": "no good"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    # Problems too (an unauthenticated predict).
    r = serve_client.post("/v1/models/mdl_x/predict", json={"inputs": ["a"]})
    assert r.status_code == 401 and r.headers["x-request-id"]


@pytest.mark.django_db(transaction=True)
def test_a_predict_line_carries_request_tenant_and_model_but_no_input(
    tenant, settings, closed_port, tmp_path, log_lines
):
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"never loaded: admission fails first")
    model_id = register_text_model(tenant.org, (str(saved), ["neg", "pos"]), "mdl_logsredis1")
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port}/0"
    with serve_app() as client:
        r = client.post(
            f"/v1/models/{model_id}/predict",
            json={"inputs": [INPUT]},
            headers={"Authorization": f"Bearer {tenant.key}", "X-Request-ID": "edge-42"},
        )
    assert r.status_code == 503, r.text
    assert r.headers["x-request-id"] == "edge-42"
    (line,) = log_lines.records(request_id="edge-42")
    assert line["logger"] == "serve.plane" and line["level"] == "warning"
    assert line["event"].startswith("admission failed")
    assert line["organization_id"] == tenant.org.pk
    assert line["model_id"] == model_id
    # No customer content, no key, anywhere (the app's start-up and shutdown lines included).
    assert INPUT not in log_lines.text
    assert tenant.key.rsplit("_", 1)[1] not in log_lines.text
    # Background lines (the commit writer that could not start, the final flush) are JSON
    # lines too, and carry no request's context.
    background = [r for r in log_lines.records(logger="serve.plane") if r != line]
    assert background and all("request_id" not in r for r in background)


def test_uvicorn_lines_reach_the_json_handler_but_it_keeps_no_access_log(log_lines):
    import logging

    import uvicorn
    from django.conf import settings

    # What `python -m serve` does (serve/__main__.py): uvicorn applies Django's LOGGING.
    uvicorn.Config("serve.app:create_app", log_config=settings.LOGGING, access_log=False)
    log_lines.attach()  # that dictConfig replaced the root's handlers
    assert not logging.getLogger("uvicorn.error").handlers
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /signup/confirm/MQ/tok HTTP/1.1"')
    (line,) = log_lines.records(logger="uvicorn.error")
    assert line["event"] == "Application startup complete." and line["level"] == "info"
    assert "signup/confirm" not in log_lines.text
