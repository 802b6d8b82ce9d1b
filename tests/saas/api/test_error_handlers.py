"""Every error the control plane answers is problem+json outside the dashboard's browser pages
(and never HTML under /v1): routes that raise, through the real handlers (boom_urls.py)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.saas.api.boom_urls")]
PROBLEM = "application/problem+json"


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.content[:300]
    assert r["Content-Type"] == PROBLEM
    body = json.loads(r.content)
    assert body["status"] == status and body["type"].startswith("https://trainyard.dev/problems/")
    return body


@pytest.mark.parametrize(
    "path, accept",
    [
        ("/v1/boom", "application/json"),
        ("/v1/boom", "*/*"),
        ("/boom", "text/html"),
        ("/app/boom", "text/html"),
        ("/app/boom", "application/json"),
    ],
)
def test_an_uncaught_exception_is_a_500_problem_without_internals(path, accept):
    r = Client(raise_request_exception=False).get(path, HTTP_ACCEPT=accept)
    body = _problem(r, 500)
    assert "secret" not in r.content.decode() and "Traceback" not in r.content.decode()
    assert body["type"].endswith("/internal-error")


def test_permission_denied_outside_drf_is_a_403_problem_for_programs():
    _problem(Client().get("/v1/denied", HTTP_ACCEPT="text/html"), 403)
    _problem(Client().get("/app/denied", HTTP_ACCEPT="application/json"), 403)


def test_permission_denied_on_a_dashboard_page_is_the_html_error_page_for_a_browser(acme):
    c = Client(HTTP_ACCEPT="text/html")
    c.force_login(acme.users["owner"])
    r = c.get("/app/denied")
    assert r.status_code == 403 and r["Content-Type"].startswith("text/html")
    assert b"Forbidden" in r.content


def test_suspicious_operation_is_a_400_problem():
    _problem(Client().get("/app/suspicious", HTTP_ACCEPT="application/json"), 400)


def test_a_dashboard_post_without_its_csrf_token_is_a_403_problem_or_page(acme):
    c = Client(enforce_csrf_checks=True)
    c.force_login(acme.users["owner"])
    body = _problem(c.post("/app/api-keys", {"name": "k"}, HTTP_ACCEPT="application/json"), 403)
    assert "reload the page" in body["detail"]
    r = c.post("/app/api-keys", {"name": "k"}, HTTP_ACCEPT="text/html")
    assert r.status_code == 403 and r["Content-Type"].startswith("text/html")
    assert b"reload the page" in r.content


def test_an_unknown_route_is_a_404_problem_under_v1_even_for_a_browser():
    _problem(Client().get("/v1/nope/%ff%00", HTTP_ACCEPT="text/html"), 404)
    _problem(Client().get("/v1/nope/\u202e", HTTP_ACCEPT="text/html"), 404)


def test_a_nul_in_a_dashboard_form_field_is_a_400_not_a_database_error(acme):
    """/app/billing/checkout looked the plan code up as posted: a NUL made it a DataError."""
    c = Client(HTTP_ACCEPT="application/json")
    c.force_login(acme.users["owner"])
    form = "application/x-www-form-urlencoded"
    body = _problem(c.post("/app/billing/checkout", "plan=pro%00", content_type=form), 400)
    assert body["errors"] == [{"field": "plan", "message": "contains a NUL character"}]
    browser = Client(HTTP_ACCEPT="text/html")
    browser.force_login(acme.users["owner"])
    r = browser.post("/app/billing/checkout", "pl%00an=pro", content_type=form)
    assert r.status_code == 400 and b"Form fields cannot contain NUL" in r.content
    # multipart (left to the view): the plan is unknown, said on the billing page
    r = browser.post("/app/billing/checkout", {"plan": "pro\x00"})
    assert r.status_code == 302 and r["Location"] == "/app/billing"
