"""Checks when work is accepted: hard quotas and spend caps (402 when refused)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.common.actor import Actor
from saas.common.errors import DomainError
from saas.tenancy.models import Organization

from .. import pricing
from ..selectors import billing_account_get, period_charges, usage_totals


class PaymentRequired(DomainError):
    """402: a hard quota or a spend cap refuses new work; ``extra`` says which and when it resets."""

    status = 402
    code = "payment-required"
    title = "A billing limit was reached"


def billing_check(
    *,
    organization: Organization,
    meter: str,
    quantity: Decimal | int,
    actor: Actor,
    on: datetime.date | None = None,
) -> None:
    """Refuse work the organisation cannot be billed for, with a 402 problem saying why.

    Checks, for the month holding ``on`` (today): a hard quota (plans with hard limits, e.g.
    free: ``included_units`` of ``meter``), the organisation's monthly spend cap, and the API
    key's monthly spend cap, the key being ``actor.api_key_id`` (looked up here; a user or the
    system has no key cap). Running work is never stopped; this only gates new work.
    ``quantity`` is the units the new work adds (0 when unknown, e.g. a training job: then the
    check is "already at the limit").

    Raises PaymentRequired (402), whose ``extra`` says which limit and when it resets.
    """
    on = on or timezone.now().date()
    start, end = pricing.month_bounds(on)
    account = billing_account_get(organization=organization)
    reset = end.isoformat()
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    if account.plan.hard_limits:
        price = pricing.price_for(
            organization_id=organization.pk, plan=account.plan, meter=meter, on=on
        )
        used = totals.get(meter, Decimal(0))
        if used + Decimal(quantity) > price.included_units or (
            quantity == 0 and used >= price.included_units
        ):
            raise PaymentRequired(
                f"The {account.plan.name} plan includes {price.included_units.normalize():f} {meter} a month; "
                f"{used.normalize():f} are used. The quota resets on {reset}; upgrade to continue now.",
                meter=str(meter),
                limit=f"{price.included_units.normalize():f}",
                used=f"{used.normalize():f}",
                resets_on=reset,
            )
    if account.monthly_spend_cap is not None:
        spent = period_charges(organization=organization, start=start, end=end).total
        if spent >= account.monthly_spend_cap:
            raise PaymentRequired(
                f"Your organisation's monthly spend cap of {account.monthly_spend_cap} {account.plan.currency} "
                f"is reached ({spent} spent this month); it resets on {reset}.",
                limit=str(account.monthly_spend_cap),
                spent=str(spent),
                remaining="0",
                resets_on=reset,
            )
    api_key = (
        ApiKey.objects.for_tenant(organization).filter(pk=actor.api_key_id).first()
        if actor.api_key_id is not None
        else None
    )
    cap = api_key.monthly_spend_cap if api_key is not None else None
    if api_key is not None and cap is not None:
        key_totals = usage_totals(
            organization_id=organization.pk, start=start, end=end, api_key_id=api_key.pk
        )
        contract = pricing.contract_active(organization_id=organization.pk, on=start)
        key_spent = Decimal(0)
        for m, q in key_totals.items():
            p = pricing.price_for(
                organization_id=organization.pk,
                plan=account.plan,
                meter=m,
                on=start,
                contract=contract,
            )
            key_spent += (
                q * p.unit_price
            )  # the key's usage at its unit price, included units ignored
        key_spent = pricing.round_money(
            key_spent, contract.currency if contract else account.plan.currency
        )
        if key_spent >= cap:
            raise PaymentRequired(
                f"This API key's monthly spend cap of {cap} is reached ({key_spent} spent); it resets on {reset}.",
                limit=str(cap),
                spent=str(key_spent),
                remaining="0",
                resets_on=reset,
            )
