"""The console's unit-economics page: per tenant and per plan, sortable, bad input 400."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_economics_lists_every_tenant_with_its_plan(console, acme, globex):
    resp = console.get("/console/economics?sort=organization&dir=desc")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert html.index(">globex<") < html.index(">acme<")  # sorted descending by slug
    assert "Per plan" in html and ">free<" in html


@pytest.mark.parametrize("query", ["month=2026-13", "month=soon", "sort=password", "dir=sideways"])
def test_bad_month_or_sort_is_a_400(console, query):
    assert console.get(f"/console/economics?{query}").status_code == 400
