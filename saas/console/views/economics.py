"""Unit economics per tenant for a month: revenue (invoiced or accrued) against cost by meter
(training CPU and GPU, inference CPU, storage), gross margin and margin %, sortable; a chart
of the best and worst tenants; totals per plan. Figures come from
:func:`saas.billing.economics.unit_economics`, which says how each is defined."""

from __future__ import annotations

import datetime

import pygal
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from saas.billing.economics import COST_METERS, TenantEconomics, unit_economics
from saas.common.charts import chart_config

from ..base import console_error, staff_page

COLUMNS = {
    "organization": "Tenant",
    "plan": "Plan",
    "revenue": "Revenue",
    **{f"cost:{m}": label for m, label in COST_METERS.items()},
    "inference_cpu_seconds": "Inference seconds",
    "cost": "Cost",
    "gross_margin": "Gross margin",
    "margin_pct": "Margin %",
}
SORTS = tuple(COLUMNS)
CHART_TENANTS = 5  # best and worst each


def _value(t: TenantEconomics, column: str):
    if column.startswith("cost:"):
        return t.cost_by_meter.get(column[5:])
    return getattr(t, column)


def best_and_worst_chart(tenants: list[TenantEconomics], currency: str) -> str:
    """A horizontal bar chart (SVG text) of gross margin: the ``CHART_TENANTS`` best tenants
    and the ``CHART_TENANTS`` worst (each tenant once), best at the top."""
    ranked = sorted(
        (t for t in tenants if t.gross_margin is not None),
        key=lambda t: (t.gross_margin, t.organization),
        reverse=True,
    )
    if len(ranked) > 2 * CHART_TENANTS:
        ranked = ranked[:CHART_TENANTS] + ranked[-CHART_TENANTS:]
    chart = pygal.HorizontalBar(
        **chart_config(
            width=640,
            height=max(160, 30 * len(ranked) + 80),
            show_legend=False,
            print_values=True,
            title=f"Gross margin, best and worst tenants ({currency.upper()})",
        )
    )
    ranked.reverse()  # pygal draws the first value at the bottom
    chart.x_labels = [t.organization for t in ranked]
    chart.add(
        "gross margin",
        [
            {
                "value": float(t.gross_margin or 0),
                "color": "#dc2626" if t.losing else "#0d9488",
                "formatter": lambda v: f"{v:,.2f}",
            }
            for t in ranked
        ],
    )
    return chart.render(is_unicode=True)


@staff_page(read=True)
def economics(request):
    """GET ``?month=YYYY-MM&sort=<column>&dir=asc|desc``; a bad value is a 400 page."""
    today = timezone.now().date()
    month = request.GET.get("month") or today.strftime("%Y-%m")
    try:
        start = datetime.datetime.strptime(month, "%Y-%m").date().replace(day=1)
    except ValueError:
        return console_error(request, 400, "Bad month", "month must look like 2026-11.")
    if not datetime.date(2000, 1, 1) <= start <= datetime.date(2100, 1, 1):
        return console_error(request, 400, "Bad month", "month must be between 2000 and 2100.")
    sort = request.GET.get("sort", "gross_margin")
    direction = request.GET.get("dir", "asc")
    if sort not in SORTS or direction not in ("asc", "desc"):
        return console_error(
            request, 400, "Bad sort", f"sort is one of {', '.join(SORTS)}; dir is asc or desc."
        )
    month_data = unit_economics(start=start, today=today)
    rows = list(month_data.tenants)

    def key(t: TenantEconomics):
        v = _value(t, sort)
        return (v is None, v if v is not None else 0)

    # None (no margin: no revenue, or another currency) sorts last either way.
    rows.sort(key=key, reverse=direction == "desc")
    if direction == "desc":
        rows.sort(key=lambda t: _value(t, sort) is None)
    return render(
        request,
        "console/economics.html",
        {
            "section": "economics",
            "month": month,
            "m": month_data,
            "open_month": month_data.end > today,
            "sort": sort,
            "dir": direction,
            "rows": rows,
            "meters": list(COST_METERS.items()),
            "plans": month_data.plans,
            "columns": COLUMNS.items(),
            "losing": sum(1 for t in rows if t.losing),
            "chart": best_and_worst_chart(rows, month_data.cost_currency) if rows else "",
        },
    )


urlpatterns = [path("economics", economics, name="economics")]
