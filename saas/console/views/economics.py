"""Unit economics per tenant for a month: revenue, compute cost, gross margin (sortable), and
totals per plan. Figures come from :func:`saas.billing.selectors.margins` (revenue = the
month's invoice before tax; cost = the month's usage events priced with the rate card)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.shortcuts import render
from django.urls import path
from django.utils import timezone

from saas.billing.models import BillingAccount
from saas.billing.selectors import margins

from ..base import console_error, staff_page

COLUMNS = {
    "organization": "Tenant",
    "plan": "Plan",
    "revenue": "Revenue",
    "compute_cost": "Compute cost",
    "gross_margin": "Gross margin",
    "margin_pct": "Margin %",
}
SORTS = tuple(COLUMNS)


@staff_page(read=True)
def economics(request):
    """GET ``?month=YYYY-MM&sort=<column>&dir=asc|desc``; a bad value is a 400 page."""
    today = timezone.now().date()
    month = request.GET.get("month") or today.strftime("%Y-%m")
    try:
        start = datetime.datetime.strptime(month, "%Y-%m").date().replace(day=1)
    except ValueError:
        return console_error(request, 400, "Bad month", "month must look like 2026-11.")
    sort = request.GET.get("sort", "gross_margin")
    direction = request.GET.get("dir", "asc")
    if sort not in SORTS or direction not in ("asc", "desc"):
        return console_error(
            request, 400, "Bad sort", f"sort is one of {', '.join(SORTS)}; dir is asc or desc."
        )
    rows = margins(start=start)
    # Cross-tenant on purpose (staff page): each tenant's plan for the per-plan view.
    plans = dict(
        BillingAccount.objects.unscoped_all_tenants().values_list(
            "organization__slug", "plan__code"
        )
    )
    by_plan: dict[str, dict[str, Decimal | int]] = {}
    for r in rows:
        r["plan"] = plans.get(r["organization"], "")
        r["losing"] = r["gross_margin"] < 0
        t = by_plan.setdefault(
            r["plan"], {"tenants": 0, "revenue": Decimal(0), "compute_cost": Decimal(0)}
        )
        t["tenants"] += 1
        t["revenue"] += r["revenue"]
        t["compute_cost"] += r["compute_cost"]

    def key(r):
        v = r[sort]
        return (v is None, v if v is not None else 0)

    rows.sort(key=key, reverse=direction == "desc")
    plan_rows = [
        {"plan": p, **t, "gross_margin": t["revenue"] - t["compute_cost"]}
        for p, t in sorted(by_plan.items())
    ]
    return render(
        request,
        "console/economics.html",
        {
            "section": "economics",
            "month": month,
            "sort": sort,
            "dir": direction,
            "rows": rows,
            "plans": plan_rows,
            "columns": COLUMNS.items(),
            "losing": sum(1 for r in rows if r["losing"]),
        },
    )


urlpatterns = [path("economics", economics, name="economics")]
