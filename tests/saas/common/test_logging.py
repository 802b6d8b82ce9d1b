"""Structured logs of the web tier: JSON lines, request context, X-Request-ID, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid

import pytest
import structlog
from django.core.exceptions import ImproperlyConfigured

from saas.common.logs import formatter, incoming_request_id, mask_string
from saas.settings import LOGGING, log_format

API_KEY = "ty_live_abcdefghijkl_" + "S3cr3tPart" * 4


def render(*, structlog_event: dict | None = None, stdlib: tuple | None = None) -> dict:
    """One line through the production formatter, parsed."""
    capture = logging.StreamHandler(stream := io.StringIO())
    capture.setFormatter(formatter("json"))
    logger = logging.getLogger("tests.render")
    logger.addHandler(capture)
    logger.propagate = False
    try:
        if structlog_event is not None:
            structlog.get_logger("tests.render").warning(**structlog_event)
        else:
            assert stdlib is not None
            logger.warning(*stdlib)
    finally:
        logger.removeHandler(capture)
        logger.propagate = True
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


# --- settings ------------------------------------------------------------------------------


def test_log_format_setting():
    assert log_format("", debug=False) == "json"
    assert log_format("  ", debug=True) == "console"
    assert log_format("JSON", debug=True) == "json"
    assert log_format("console", debug=False) == "console"
    with pytest.raises(ImproperlyConfigured, match="TRAINYARD_LOG_FORMAT"):
        log_format("bogus", debug=False)


def test_logging_keeps_the_quiet_loggers_and_formats_the_root_handler():
    loggers = LOGGING["loggers"]
    assert loggers["django.request"]["level"] == "ERROR"
    assert loggers["httpx"]["level"] == loggers["httpcore"]["level"] == "WARNING"
    handler = LOGGING["handlers"][LOGGING["root"]["handlers"][0]]
    assert LOGGING["formatters"][handler["formatter"]]["()"] == "saas.common.logs.formatter"
    root = logging.getLogger()
    assert any(isinstance(h.formatter, structlog.stdlib.ProcessorFormatter) for h in root.handlers)


# --- the line's shape ----------------------------------------------------------------------


def test_a_stdlib_line_is_one_json_object_with_the_standard_fields():
    with structlog.contextvars.bound_contextvars(request_id="r-1", organization_id="org_1"):
        line = render(stdlib=("job %s failed", "tj_1"))
    assert list(line)[:4] == ["timestamp", "level", "logger", "event"]
    assert line["event"] == "job tj_1 failed"
    assert line["level"] == "warning" and line["logger"] == "tests.render"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])
    assert line["request_id"] == "r-1" and line["organization_id"] == "org_1"


def test_an_exception_is_rendered_as_text_and_redacted():
    capture = logging.StreamHandler(stream := io.StringIO())
    capture.setFormatter(formatter("json"))
    logger = logging.getLogger("tests.exc")
    logger.addHandler(capture)
    logger.propagate = False
    try:
        try:
            raise ValueError(f"bad key {API_KEY}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(capture)
        logger.propagate = True
    line = json.loads(stream.getvalue())
    assert "ValueError: bad key ty_live_abcdefghijkl_***" in line["exception"]
    assert "S3cr3tPart" not in stream.getvalue()


def test_console_format_renders_for_a_person():
    fmt = formatter("console")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    out = fmt.format(record)
    assert "hello there" in out and not out.startswith("{")
    with pytest.raises(ValueError):
        formatter("xml")


# --- redaction -----------------------------------------------------------------------------


def test_secret_keys_are_masked_at_any_depth_and_any_case():
    line = render(
        structlog_event={
            "event": "calling",
            "authorization": f"Bearer {API_KEY}",
            "Cookie": "sessionid=abc",
            "body": {"user": {"Password": "hunter2", "name": "ada"}, "items": [{"token": "t"}]},
            "stripe_webhook_secret": "whsec_abc",
            "STRIPE_API_KEY": "sk_live_abc",
            "key": "raw",
            # Not secrets: kept.
            "api_key_id": "key_123",
            "max_tokens": 50,
            "routing_key": "training-cpu",
        }
    )
    assert line["authorization"] == line["Cookie"] == line["key"] == "***"
    assert line["stripe_webhook_secret"] == line["STRIPE_API_KEY"] == "***"
    assert line["body"]["user"] == {"Password": "***", "name": "ada"}
    assert line["body"]["items"] == [{"token": "***"}]
    assert (line["api_key_id"], line["max_tokens"], line["routing_key"]) == (
        "key_123",
        50,
        "training-cpu",
    )
    assert "hunter2" not in json.dumps(line) and "S3cr3tPart" not in json.dumps(line)


def test_secrets_inside_strings_are_masked():
    line = render(
        stdlib=(
            "sent %s with Authorization: Bearer abc.def-ghi and %s, then %s and %s",
            API_KEY,
            "sk_test_51Habc",
            "GET /invitations/accept?token=inv-secret&x=1",
            "whsec_zzz",
        )
    )
    event = line["event"]
    assert "ty_live_abcdefghijkl_***" in event  # the public id names the key; the secret is gone
    assert "Bearer ***" in event and "abc.def-ghi" not in event
    assert "sk_test_***" in event and "whsec_***" in event
    assert "token=***&x=1" in event and "inv-secret" not in event
    assert mask_string("Internal Server Error: /password-reset/MQ/cz2-abc123") == (
        "Internal Server Error: /password-reset/-/-"
    )
    assert "S3cr3tPart" not in event


@pytest.mark.parametrize(
    "text",
    [
        "job tj_abc failed: epoch 3 of 5, routing training-cpu, model mdl_1",
        "basic usage of the internal error page",
        "Internal Server Error: /v1/models",
    ],
)
def test_mask_string_leaves_ordinary_text_alone(text):
    assert mask_string(text) == text


def test_mask_string_masks_basic_and_internal_credentials():
    assert mask_string("Authorization: Basic dXNlcjpwYXNzd29yZA==") == "Authorization: Basic ***"
    signed = "eyJvIjoib3JnXzEiLCJ1Ijo3fQ:1tXyZa:abcDEF123-_ghiJKL"
    assert mask_string(f"Internal {signed}") == "Internal ***"


@pytest.mark.parametrize(
    "value, ok",
    [
        ("5f0c9d7e-3b1a-4c2e-9f00-1234567890ab", True),
        ("0123456789abcdef0123456789abcdef", True),
        ("req-1.2:3_x", True),
        ("", False),
        (None, False),
        ("has space", False),
        ("x" * 129, False),
        ("abc\n", False),
        ('"quoted"', False),
    ],
)
def test_incoming_request_id(value, ok):
    assert incoming_request_id(value) == (value if ok else None)


# --- requests ------------------------------------------------------------------------------


def test_an_api_key_request_logs_json_lines_with_its_request_id_and_tenant(tenant, log_lines):
    r = tenant.client.get("/v1/datasets")
    assert r.status_code == 200
    request_id = r["X-Request-ID"]
    assert uuid.UUID(request_id)  # fresh: the client sent none
    finished = log_lines.records(event="request_finished")
    assert len(finished) == 1, log_lines.text
    line = finished[0]
    assert line["request_id"] == request_id
    assert line["organization_id"] == tenant.org.pk
    assert line["api_key_id"].startswith("key_")
    assert line["code"] == 200 and line["request"] == "GET /v1/datasets"
    assert log_lines.records(event="request_started", request_id=request_id)
    # Every line is JSON (records() parsed them all) and none carries the key.
    assert tenant.key not in log_lines.text
    assert tenant.key.rsplit("_", 1)[1] not in log_lines.text


def test_an_incoming_request_id_is_kept_and_echoed(tenant, log_lines):
    r = tenant.client.get("/v1/datasets", HTTP_X_REQUEST_ID="edge-7f3a")
    assert r["X-Request-ID"] == "edge-7f3a"
    assert log_lines.records(event="request_finished", request_id="edge-7f3a")


def test_an_unusable_incoming_request_id_is_replaced(tenant, log_lines):
    r = tenant.client.get("/v1/datasets", HTTP_X_REQUEST_ID="x" * 200)
    assert uuid.UUID(r["X-Request-ID"])
    assert "x" * 129 not in log_lines.text


def test_a_dashboard_session_binds_its_current_organisation(acme, log_lines):
    r = acme.session("owner").get("/app/")
    assert r.status_code == 200
    (line,) = log_lines.records(event="request_finished", request_id=r["X-Request-ID"])
    assert line["organization_id"] == acme.org.pk
    assert line["user_id"] == acme.users["owner"].pk


def test_a_failed_authentication_still_gets_a_request_id_and_logs_no_key(db, log_lines):
    from rest_framework.test import APIClient

    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    r = c.get("/v1/datasets")
    assert r.status_code == 401
    assert r["X-Request-ID"]
    (line,) = log_lines.records(event="request_finished")
    assert line["code"] == 401 and line.get("organization_id") is None
    assert "S3cr3tPart" not in log_lines.text


def test_the_context_does_not_leak_into_the_next_request(tenant, db, log_lines):
    tenant.client.get("/v1/datasets")
    from django.test import Client

    r = Client().get("/login")
    (line,) = log_lines.records(event="request_finished", request_id=r["X-Request-ID"])
    assert "organization_id" not in line and "api_key_id" not in line


@pytest.mark.parametrize(
    "path, secret, logged",
    [
        (
            "/invitations/accept?token=inv-Secret-123",
            "inv-Secret-123",
            "GET /invitations/accept?token=-",
        ),
        (
            "/signup?invitation=inv-Secret-456&next=/app/",
            "inv-Secret-456",
            "GET /signup?invitation=-&next=-",
        ),
        ("/password-reset/MQ/ct7-Secret-789", "ct7-Secret-789", "GET /password-reset/-/-"),
        ("/signup/confirm/MQ/cf-Secret-000", "cf-Secret-000", "GET /signup/confirm/-/-"),
    ],
)
def test_emailed_tokens_never_appear_in_request_lines(db, log_lines, path, secret, logged):
    from django.test import Client

    Client().get(path)
    started = log_lines.records(event="request_started")
    finished = log_lines.records(event="request_finished")
    assert [s["request"] for s in started] == [logged]
    assert [f["request"] for f in finished] == [logged]
    assert secret not in log_lines.text
