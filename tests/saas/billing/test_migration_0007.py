"""billing 0007: existing plans get their GPU price (what an operator edited is kept), and
invoices a failed Stripe push left behind become due for the new retry task."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal as D

import pytest
from django.apps import apps

from saas.billing.models import BillingAccount, Invoice, PlanPrice
from saas.common.actor import Actor
from saas.tenancy.services import organization_create

pytestmark = pytest.mark.django_db
forwards = importlib.import_module(
    "saas.billing.migrations.0007_billing_gpu_reservations_push_retry"
).forwards


def _invoice(org, number: str, **fields) -> Invoice:
    return Invoice.objects.for_tenant(org).create(
        organization=org,
        number=number,
        period_start=fields.pop("period_start"),
        period_end=dt.date(2026, 3, 1),
        currency="usd",
        subtotal=D("49.00"),
        total=fields.pop("total", D("49.00")),
        due_on=dt.date(2026, 3, 1),
        **fields,
    )


def test_gpu_prices_are_added_and_failed_pushes_queued():
    PlanPrice.objects.filter(meter="training_gpu_seconds").delete()
    PlanPrice.objects.filter(plan__code="pro", meter="training_compute_seconds").update(
        unit_price=D("0.0007")  # an operator's edit
    )
    org = organization_create(
        slug="old", name="Old", owner_email="o@old.test", actor=Actor.system()
    )
    assert BillingAccount.objects.for_tenant(org).exists()
    failed = _invoice(org, "TY-9001", period_start=dt.date(2026, 1, 1))
    pushed = _invoice(org, "TY-9002", period_start=dt.date(2026, 2, 1), stripe_invoice_id="in_1")
    free = _invoice(org, "TY-9003", period_start=dt.date(2025, 12, 1), total=D("0"))

    forwards(apps, None)

    gpu = {p.plan.code: p for p in PlanPrice.objects.filter(meter="training_gpu_seconds")}
    assert gpu["free"].included_units == 0 and gpu["pro"].unit_price == D("0.0012")
    assert PlanPrice.objects.get(plan__code="pro", meter="training_compute_seconds").unit_price == (
        D("0.0007")
    )
    due = dict(Invoice.objects.for_tenant(org).values_list("number", "stripe_next_attempt_at"))
    assert due[failed.number] is not None
    assert due[pushed.number] is None and due[free.number] is None
