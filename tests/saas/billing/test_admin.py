"""The billing admin: invoices read-only; an account's plan changes by an audited action."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model

from saas.billing import selectors
from saas.billing.models import Invoice
from saas.billing.services.period_close import period_close
from saas.common.actor import Actor
from saas.tenancy.models import AuditEvent


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_superuser("op", "op@trainyard.test", "pw")
    client.force_login(user)
    client.operator = user
    return client


def test_admin_changes_the_plan_with_an_audited_action(operator, acme):
    account = selectors.billing_account_get(organization=acme.org)
    r = operator.post(
        "/admin/billing/billingaccount/",
        {"action": "move_to_plan_pro", "_selected_action": [account.pk]},
    )
    assert r.status_code == 302
    assert selectors.billing_account_get(organization=acme.org).plan.code == "pro"
    event = AuditEvent.objects.for_tenant(acme.org).get(action="billing_account.plan_changed")
    assert event.actor_user_id == operator.operator.pk


def test_admin_cannot_edit_the_plan_field(operator, acme):
    account = selectors.billing_account_get(organization=acme.org)
    pro = type(account.plan).objects.get(code="pro")
    assert (
        operator.get(f"/admin/billing/billingaccount/{quote(account.pk)}/change/").status_code
        == 200
    )
    r = operator.post(
        f"/admin/billing/billingaccount/{quote(account.pk)}/change/",
        {"plan": pro.pk, "monthly_spend_cap": "1.00"},
    )
    assert r.status_code == 403
    account = selectors.billing_account_get(organization=acme.org)
    assert account.plan.code == "free" and account.monthly_spend_cap is None


def test_invoices_are_read_only_in_the_admin(operator, acme):
    invoice = period_close(
        actor=Actor.system(), organization=acme.org, period_start=datetime.date(2026, 5, 1)
    )
    base = f"/admin/billing/invoice/{quote(invoice.pk)}"
    assert operator.get(f"{base}/change/").status_code == 200  # viewable
    assert operator.post(f"{base}/change/", {"status": "void"}).status_code == 403
    assert operator.post(f"{base}/delete/", {"post": "yes"}).status_code == 403
    assert operator.get("/admin/billing/invoice/add/").status_code == 403
    assert Invoice.objects.for_tenant(acme.org).get().status == invoice.status
