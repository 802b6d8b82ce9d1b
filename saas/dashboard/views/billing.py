"""The usage and billing page, and the way out to Stripe Checkout or the customer portal."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from saas.billing import pricing, stripe_sync
from saas.billing import selectors as billing_selectors
from saas.billing import services as billing
from saas.common.errors import DomainError
from saas.metering.selectors import usage_by_meter_and_day
from saas.tenancy.permissions import Action

from .. import charts
from ..base import org_page
from ..forms import SpendCapForm
from ..presenters.usage import cap_percent, usage_series
from .common import bound, page

#: Invoices listed on the page, newest period first.
INVOICES_SHOWN = 24


def _usage_charts(org, start: datetime.date, today: datetime.date) -> list[dict]:
    """This period's usage per meter: the presenter's series, each with its SVG chart."""
    rows = usage_by_meter_and_day(
        organization_id=org.pk,
        since=datetime.datetime.combine(start, datetime.time.min, tzinfo=datetime.UTC),
    )
    return [
        {**s, "svg": charts.usage_per_day(s["days"], {s["meter"]: s["values"]}, title=s["title"])}
        for s in usage_series(rows, start=start, today=today)
    ]


@org_page(read=Action.USAGE_READ, write=Action.BILLING_MANAGE)
def billing_page(request):
    """Usage by meter and day, this period's charges against included units and the spend cap,
    invoices (HTML/PDF), and plan changes (Stripe Checkout / portal when configured)."""
    org = request.tenant.organization
    account = billing.billing_account_get(organization=org)
    form = SpendCapForm(bound(request), initial={"monthly_spend_cap": account.monthly_spend_cap})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            billing.billing_account_update(
                organization=org,
                actor=request.tenant.actor,
                monthly_spend_cap=form.cleaned_data["monthly_spend_cap"],
            )
            messages.success(request, "Spend cap saved.")
            return redirect("dashboard:billing")
        status = 400
    today = timezone.now().date()
    start, end = pricing.month_bounds(today)
    computed = billing.period_charges(organization=org, start=start, end=end)
    contract = pricing.contract_active(organization_id=org.pk, on=start)
    return page(
        request,
        "dashboard/billing/page.html",
        {
            "account": account,
            "form": form,
            "start": start,
            "end": end - datetime.timedelta(days=1),
            "usage": _usage_charts(org, start, today),
            "levels": billing.usage_levels(organization=org),
            "computed": computed,
            "currency": (contract.currency if contract else account.plan.currency).upper(),
            "contract": contract,
            "cap_percent": cap_percent(computed.total, account.monthly_spend_cap),
            "invoices": billing_selectors.invoice_list(organization=org)[:INVOICES_SHOWN]
            if request.tenant.can.invoices_read
            else [],
            "plans": billing_selectors.plan_list_self_serve(),
            "stripe": bool(settings.STRIPE_API_KEY),
        },
        status=status,
    )


@org_page(write=Action.BILLING_MANAGE)
@require_POST
def billing_checkout(request):
    """Redirect to Stripe Checkout for a paid plan (or the customer portal)."""
    org = request.tenant.organization
    try:
        if request.POST.get("portal"):
            url = stripe_sync.portal_session_create(
                account=billing.billing_account_get(organization=org)
            )
        else:
            url = billing.checkout_url(
                organization=org, plan_code=request.POST.get("plan", ""), actor=request.tenant.actor
            )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:billing")
    return redirect(url)
