"""Console pages: tenants (search, one tenant's detail) and the operator's actions on them.

Every action is a POST with a ``reason`` and goes through the owning domain service with
``actor=request.actor``, so the staff user and the reason land in the tenant's audit log.
Reads here cross tenants on purpose (an operator looks anything up), hence the loud
``unscoped_all_tenants`` in the search; the detail page reads through ``for_tenant(org)``.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_revoke
from saas.billing import pricing
from saas.billing.models import BillingAccount, Plan
from saas.billing.selectors import (
    METER_LABELS,
    billing_account_get,
    billing_currency,
    credit_balance,
    credit_ledger_list,
    invoice_list,
    period_charges,
    usage_totals,
)
from saas.billing.services.accounts import billing_plan_change
from saas.billing.services.credits import (
    AMOUNT_MAX,
    billing_credit_grant,
    billing_credit_reverse,
)
from saas.billing.services.stripe_push import invoice_stripe_repush
from saas.common.errors import ValidationFailed
from saas.jobs.models import TrainingJob
from saas.tenancy.models import AuditEvent, Membership, Organization
from saas.tenancy.services.organizations import organization_reactivate, organization_suspend

from ..base import console_error, staff_page

PAGE_SIZE = 50


def _org(org_id: str) -> Organization:
    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        raise Http404
    return org


@staff_page(read=True)
def tenant_list(request):
    """Tenants matching ``q`` (slug, name, org id, or a member's email), 50 a page."""
    q = request.GET.get("q", "").strip()
    orgs = Organization.objects.order_by("slug")
    if q:
        emails = Membership.objects.filter(user__email__icontains=q).values("organization_id")
        orgs = orgs.filter(Q(slug__icontains=q) | Q(name__icontains=q) | Q(pk=q) | Q(pk__in=emails))
    page = Paginator(orgs, PAGE_SIZE).get_page(request.GET.get("page"))
    # Cross-tenant on purpose: the operator's list shows every tenant's plan.
    plans = dict(
        BillingAccount.objects.unscoped_all_tenants()
        .filter(organization_id__in=[o.pk for o in page])
        .values_list("organization_id", "plan__code")
    )
    rows = [{"org": o, "plan": plans.get(o.pk, "")} for o in page]
    return render(
        request,
        "console/tenants.html",
        {"section": "tenants", "q": q, "page": page, "rows": rows},
    )


def _actor_label(ev: AuditEvent, users: dict, keys: dict) -> str:
    if ev.actor_user_id:
        return users.get(ev.actor_user_id, f"user {ev.actor_user_id}")
    if ev.actor_api_key_id:
        return f"key {keys.get(ev.actor_api_key_id, ev.actor_api_key_id)}"
    return "system"


def _detail(request, org: Organization, *, problems=None, status=200, amount=""):
    account = billing_account_get(organization=org)
    currency = billing_currency(organization=org)
    start, end = pricing.month_bounds(timezone.now().date())
    charges = period_charges(organization=org, start=start, end=end)
    used = usage_totals(organization_id=org.pk, start=start, end=end)
    usage = [(METER_LABELS.get(m, m), q) for m, q in sorted(used.items())]
    keys = list(ApiKey.objects.for_tenant(org).order_by("-created_at"))
    key_prefix = {k.pk: k.prefix for k in keys}
    events = list(AuditEvent.objects.for_tenant(org).order_by("-created_at", "-pk")[:100])
    User = get_user_model()
    users = dict(
        User.objects.filter(
            pk__in={e.actor_user_id for e in events if e.actor_user_id}
        ).values_list("pk", "email")
    )
    audit = [{"ev": e, "actor": _actor_label(e, users, key_prefix)} for e in events]
    ctx = {
        "section": "tenants",
        "org": org,
        "account": account,
        "charges": charges,
        "usage": usage,
        "period_start": start,
        "jobs": TrainingJob.objects.for_tenant(org).order_by("-created_at")[:20],
        "keys": keys,
        "members": Membership.objects.filter(organization=org).select_related("user"),
        "invoices": invoice_list(organization=org)[:24],
        "currency": currency,
        "credit_balance": credit_balance(organization=org, currency=currency),
        "credit_entries": credit_ledger_list(organization=org)[:20],
        "amount": amount,
        "audit": audit,
        "plans": Plan.objects.order_by("code"),
        "problems": problems or [],
    }
    return render(request, "console/tenant_detail.html", ctx, status=status)


@staff_page(read=True)
def tenant_detail(request, org_id: str):
    """One tenant: plan, status, this period's usage, credit balance and ledger, jobs, keys,
    members, invoices, audit."""
    return _detail(request, _org(org_id))


def _reason(request) -> str:
    return request.POST.get("reason", "").strip()[:500]


@staff_page(write=True)
def tenant_action(request, org_id: str, action: str):
    """POST an action on a tenant: suspend, reactivate, plan, revoke_key, repush_invoice,
    grant_credit and reverse_credit (``amount``).

    Every action needs a ``reason``; bad input is a 400 detail page listing the problems, with
    nothing changed. Unknown org/key/invoice → 404."""
    org = _org(org_id)
    if action not in ACTIONS:
        raise Http404
    reason = _reason(request)
    if action in ("grant_credit", "reverse_credit"):
        return _credit(request, org, reason, reverse=action == "reverse_credit")
    problems = [] if reason else ["A reason is required."]
    if problems:
        return _detail(request, org, problems=problems, status=400)
    actor = request.actor
    if action == "suspend":
        organization_suspend(organization=org, actor=actor, reason=reason)
    elif action == "reactivate":
        organization_reactivate(organization=org, actor=actor, reason=reason)
    elif action == "plan":
        try:
            billing_plan_change(
                organization=org, plan_code=request.POST.get("plan", ""), actor=actor, reason=reason
            )
        except ValidationFailed as exc:
            return _detail(request, org, problems=[str(exc)], status=400)
    elif action == "revoke_key":
        key = ApiKey.objects.for_tenant(org).filter(pk=request.POST.get("key_id", "")).first()
        if key is None:
            raise Http404
        api_key_revoke(api_key=key, actor=actor, reason=reason)
    elif action == "repush_invoice":
        result = invoice_stripe_repush(
            organization_id=org.pk,
            invoice_id=request.POST.get("invoice_id", ""),
            actor=actor,
            reason=reason,
        )
        outcome = {True: "pushed", False: "failed (retried later)", None: "not tried now"}[result]
        messages.info(request, f"Invoice push to Stripe: {outcome}.")
    messages.success(request, f"{action} done.")
    return redirect("console:tenant_detail", org_id=org.pk)


def _credit(request, org: Organization, reason: str, *, reverse: bool):
    """Grant credit, or take unused credit back (``reverse``). The service checks the amount
    and the reason together, so a 400 lists every problem (and keeps the amount typed in the
    form)."""
    # Not cut short here: a cut can turn a longer number into a different valid one
    # ("2.5…e+01", 25, read as 2.5); the service refuses an overlong amount instead.
    amount = request.POST.get("amount", "").strip()
    service = billing_credit_reverse if reverse else billing_credit_grant
    try:
        entry = service(organization=org, amount=amount, reason=reason, actor=request.actor)
    except ValidationFailed as exc:
        problems = [e["message"] for e in exc.errors] or [str(exc)]
        return _detail(request, org, problems=problems, status=400, amount=amount[:AMOUNT_MAX])
    done = "Reversed" if reverse else "Granted"
    messages.success(request, f"{done} {abs(entry.amount)} {entry.currency.upper()} of credit.")
    return redirect("console:tenant_detail", org_id=org.pk)


ACTIONS = {
    "suspend",
    "reactivate",
    "plan",
    "revoke_key",
    "repush_invoice",
    "grant_credit",
    "reverse_credit",
}

_ = console_error  # shared error page, used via staff_page

urlpatterns = [
    path("tenants", tenant_list, name="tenant_list"),
    path("tenants/<str:org_id>", tenant_detail, name="tenant_detail"),
    path("tenants/<str:org_id>/<str:action>", tenant_action, name="tenant_action"),
]
