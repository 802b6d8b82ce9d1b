"""The console's unit-economics page: per tenant and per plan, sortable, bad input 400."""

from __future__ import annotations

import datetime

import pytest

from saas.console.views.economics import SORTS

pytestmark = pytest.mark.django_db


def test_economics_lists_every_tenant_with_its_plan(console, acme, globex):
    resp = console.get("/console/economics?sort=organization&dir=desc")
    assert resp.status_code == 200
    html = resp.content.decode()
    table = html[html.index("<tbody>") :]  # the chart above names the tenants too
    assert table.index(">globex<") < table.index(">acme<")  # sorted descending by slug
    assert "Per plan" in html and ">free<" in html


@pytest.mark.parametrize("query", ["month=2026-13", "month=soon", "sort=password", "dir=sideways"])
def test_bad_month_or_sort_is_a_400(console, query):
    assert console.get(f"/console/economics?{query}").status_code == 400


def test_the_page_shows_cost_by_meter_accruals_and_the_best_and_worst_chart(console, acme, globex):
    import datetime
    from decimal import Decimal as D

    from django.utils import timezone

    from saas.metering.models import Meter
    from saas.metering.services import usage_record

    now = timezone.now()
    # acme (free plan, no revenue) costs the operator $1.25 of inference CPU this month.
    usage_record(
        organization_id=acme.org.pk,
        meter=Meter.PREDICTIONS,
        quantity=D(10),
        occurred_at=now,
        source_type="test",
        source_id="p1",
        compute_cost=D("1.25"),
        dimensions={"cpu_seconds": 62.5},
    )
    resp = console.get("/console/economics?sort=cost:predictions&dir=desc")
    assert resp.status_code == 200
    html = resp.content.decode()
    for label in ("Training CPU", "Training GPU", "Inference CPU", "Storage", "Margin %"):
        assert label in html
    assert "<svg" in html and "best and worst" in html  # the chart, server-rendered
    table = html[html.index("<tbody>") :]
    assert table.index(">acme<") < table.index(">globex<")  # most inference cost first
    assert 'class="bad"' in html and "1 tenant losing money" in html
    assert "<td>62.500</td>" in html  # inference CPU seconds
    assert " *" in html  # the open month's revenue is accrued
    assert f"/console/tenants/{acme.org.pk}" in html
    last = (now.date().replace(day=1) - datetime.timedelta(days=1)).strftime("%Y-%m")
    assert console.get(f"/console/economics?month={last}").status_code == 200


@pytest.mark.parametrize("query", ["month=1900-01", "sort=cost:bogus"])
def test_out_of_range_month_or_unknown_meter_sort_is_a_400(console, query):
    assert console.get(f"/console/economics?{query}").status_code == 400


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("sort", SORTS)
def test_every_column_sorts_both_ways_with_none_last(console, acme, globex, sort, direction):
    from saas.billing.models import Contract

    # One tenant without a margin at all (revenue in eur against usd cost).
    Contract.objects.for_tenant(globex.org).create(
        organization=globex.org,
        starts_on=datetime.date(2000, 1, 1),
        ends_on=datetime.date(2100, 1, 1),
        currency="eur",
    )
    resp = console.get(f"/console/economics?sort={sort}&dir={direction}")
    assert resp.status_code == 200
    if sort in ("gross_margin", "margin_pct"):
        values = [getattr(t, sort) for t in resp.context["rows"]]
        assert None in values and values[-1] is None
        present = [v for v in values if v is not None]
        assert present == sorted(present, reverse=direction == "desc")


@pytest.mark.parametrize(("month", "status"), [("0000-01", 400), ("2026-1", 200), ("", 200)])
def test_odd_month_spellings(console, month, status):
    assert console.get(f"/console/economics?month={month}").status_code == status
