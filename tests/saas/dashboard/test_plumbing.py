"""What every dashboard page shares: HTML 404s for browsers, the Server-Timing header,
static assets served locally.
"""

from __future__ import annotations

import re

from .conftest import browser, html


def test_unknown_pages_are_html_for_browsers_and_problems_for_the_api(acme):
    c = browser(acme.users["owner"])
    r = c.get("/app/nope/nothing")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    api = c.get("/v1/nope", HTTP_ACCEPT="text/html")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"


def test_pages_report_their_server_time(workspace):
    r = workspace.client("owner").get("/app/")
    assert re.fullmatch(r"app;dur=\d+\.\d", r["Server-Timing"])


def test_static_assets_are_served_locally(workspace, client):
    page = html(workspace.client("owner").get("/app/"))
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert client.get(src).status_code == 200, src
    assert "htmx" in page and "https://" not in re.sub(
        r'href="https://[^"]*"', "", page.split("</head>")[0]
    )


def test_a_nul_in_a_dashboard_path_or_query_is_a_4xx_page_not_a_500(acme):
    owner = browser(acme.users["owner"])
    for url in ("/app/datasets/ds_%00x", "/app/training/tj_%00", "/app/models/mdl_%00"):
        r = owner.get(url, HTTP_ACCEPT="text/html")
        assert r.status_code == 404, url
        assert r["Content-Type"].startswith("text/html")
    r = owner.get("/app/training?status=%00", HTTP_ACCEPT="text/html")
    assert r.status_code == 400 and "NUL" in html(r)
