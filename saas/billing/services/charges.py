"""Pricing a finished training job inside the transaction that writes its usage events."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from saas.common.actor import Actor
from saas.metering.models import UsageEvent
from saas.tenancy.models import Organization

from .. import pricing
from ..models import BillingAccount
from .accounts import billing_account_ensure


def training_charge(
    *, organization_id: str, quantities: dict[str, Decimal]
) -> tuple[Decimal, dict, datetime.datetime]:
    """Price a finished training job exactly as its invoice lines will: call it inside the
    transaction that writes the job's usage events, and write them at the returned time.

    Locks the billing account (so concurrent completions are priced one after the other, in
    the order their events are written), then takes the time — the events' ``occurred_at``,
    which decides the month — gives the job what is left of that month's included units
    (used = the positive quantities before it, as period close allocates them), and rounds
    each meter's amount once. Returns ``(charge, {meter: {"billable", "unit_price",
    "amount"}}, occurred_at)``.
    """
    org = Organization.objects.get(pk=organization_id)
    # Priced inside the worker's completion transition, which the system makes.
    account = billing_account_ensure(organization=org, actor=Actor.system())
    BillingAccount.objects.for_tenant(organization_id).select_for_update().filter(
        pk=account.pk
    ).first()
    at = timezone.now()
    start, end = pricing.month_bounds(at.date())
    contract = pricing.contract_active(organization_id=organization_id, on=start)
    total, lines = Decimal(0), {}
    currency = contract.currency if contract else account.plan.currency
    for meter, q in quantities.items():
        price = pricing.price_for(
            organization_id=organization_id,
            plan=account.plan,
            meter=meter,
            on=start,
            contract=contract,
        )
        used = UsageEvent.objects.for_tenant(organization_id).filter(
            meter=meter, quantity__gt=0, **pricing.occurred_in(start, end)
        ).aggregate(q=Sum("quantity"))["q"] or Decimal(0)
        billable = pricing.billable_units(
            Decimal(q), pricing.included_share(price.included_units - used, Decimal(q))
        )
        amount = pricing.round_money(billable * price.unit_price, currency)
        total += amount
        lines[meter] = {
            "billable": f"{billable.normalize():f}",
            "unit_price": f"{price.unit_price.normalize():f}",
            "amount": str(amount),
        }
    return total, lines, at
