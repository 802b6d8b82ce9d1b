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
