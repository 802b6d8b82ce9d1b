"""URLs as access logs write them: no token of an emailed link survives (saas.common.redact),
and gunicorn's logger (gunicorn.conf.py) applies it to every URL-bearing atom."""

from __future__ import annotations

import datetime as dt
import importlib.util
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saas.common.redact import redact_path, redact_query, redact_request_line, redact_url
from scripts.stack import ROOT


@pytest.mark.parametrize(
    "url, expected",
    [
        ("/invitations/accept?token=abc", "/invitations/accept?token=-"),
        ("/signup?invitation=abc&x", "/signup?invitation=-&x"),
        ("/password-reset/MQ/cz1-abc", "/password-reset/-/-"),
        ("/password-reset/MQ/set-password", "/password-reset/-/-"),
        ("/password-reset/sent", "/password-reset/sent"),
        ("/signup/confirm/MQ/tok", "/signup/confirm/-/-"),
        (
            "https://app.example/signup/confirm/MQ/tok?next=/app/",
            "https://app.example/signup/confirm/-/-?next=-",
        ),
        ("/v1/datasets", "/v1/datasets"),
        ("-", "-"),
        ("", ""),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_request_line():
    assert (
        redact_request_line("POST /invitations/accept?token=abc HTTP/1.1")
        == "POST /invitations/accept?token=- HTTP/1.1"
    )
    assert redact_request_line("garbage") == "garbage"


@given(
    route=st.sampled_from(["/password-reset/", "/signup/confirm/"]),
    uid=st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", min_size=3),
    token=st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=6),
    query_value=st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6),
)
def test_no_token_survives(route, uid, token, query_value):
    url = f"{route}{uid}/{token}?token={query_value}"
    out = redact_url(url)
    assert uid not in out and token not in out and query_value not in out
    assert redact_path(route + uid + "/" + token) == route + "-/-"
    assert query_value not in redact_query(f"a={query_value}&b={query_value}")


def test_gunicorn_access_log_atoms_are_redacted():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    assert spec and spec.loader
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    from gunicorn.config import Config

    logger = conf.logger_class(Config())

    class Resp:
        status = "302 Found"
        sent = 0
        headers = [("Location", "/password-reset/MQ/set-password")]

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/invitations/accept?token=s3cret-inv",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/password-reset/MQ/s3cret-reset",
        "QUERY_STRING": "token=s3cret-inv",
        "HTTP_REFERER": "http://x/signup/confirm/MQ/s3cret-confirm",
    }
    headers = [("REFERER", "http://x/signup/confirm/MQ/s3cret-confirm")]
    atoms = logger.atoms(Resp(), headers, environ, dt.timedelta(seconds=0.01))
    text = repr(atoms)
    assert "s3cret" not in text, text
    assert atoms["r"] == "GET /invitations/accept?token=- HTTP/1.1"
    logging.getLogger("gunicorn.access").handlers.clear()
