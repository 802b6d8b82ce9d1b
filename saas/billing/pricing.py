"""Prices and money arithmetic: which price applies, and rounding to the currency's minor unit.

All amounts are ``Decimal``. A line is rounded exactly once, half-up, to the currency's minor
unit (ISO 4217: 2 decimals for most currencies, 0 for e.g. JPY); totals are sums of rounded
lines, so an invoice always adds up.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .models import Contract, ContractPrice, Plan, PlanPrice, RateCard

# ISO 4217 minor-unit exponents that differ from 2 (the lists Stripe documents).
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()
)
THREE_DECIMAL_CURRENCIES = frozenset("bhd jod kwd omr tnd".split())


def currency_places(currency: str) -> int:
    """Decimals of ``currency``'s minor unit: 0 (JPY…), 3 (KWD…) or 2."""
    cur = currency.lower()
    return 0 if cur in ZERO_DECIMAL_CURRENCIES else 3 if cur in THREE_DECIMAL_CURRENCIES else 2


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency``: Decimal('0.01'), Decimal('1') for JPY, …"""
    return Decimal(1).scaleb(-currency_places(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round once, half-up, to the currency's minor unit."""
    return Decimal(amount).quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """An amount as an integer count of minor units (what Stripe takes)."""
    return int(round_money(amount, currency) / minor_unit(currency))


def month_bounds(day: datetime.date) -> tuple[datetime.date, datetime.date]:
    """``(first day, first day of next month)`` of the calendar month holding ``day`` (UTC)."""
    start = day.replace(day=1)
    days = calendar.monthrange(day.year, day.month)[1]
    return start, start + datetime.timedelta(days=days)


def occurred_in(start: datetime.date, end: datetime.date) -> dict[str, datetime.datetime]:
    """Filter arguments for usage events that occurred on the UTC days ``[start, end)``.

    Bounds on the column itself (``occurred_at >= start 00:00 UTC AND < end 00:00 UTC``) rather
    than on its date (``occurred_at__date``, i.e. ``(occurred_at AT TIME ZONE 'UTC')::date``),
    which no index can serve: with the date form PostgreSQL reads every event the organisation
    ever had, so a month-to-date check grew with the whole ledger; with these bounds it is a
    range scan of the ``(organization, occurred_at)`` index over the period alone.
    """
    return {
        "occurred_at__gte": datetime.datetime.combine(start, datetime.time(), datetime.UTC),
        "occurred_at__lt": datetime.datetime.combine(end, datetime.time(), datetime.UTC),
    }


@dataclass(frozen=True)
class Price:
    """The price of one meter for one organisation on one day."""

    unit_price: Decimal
    included_units: Decimal
    currency: str
    source: str  # "contract ctr_…" or "plan pro"


def contract_active(*, organization_id: str, on: datetime.date) -> Contract | None:
    """The contract that governs the month holding ``on``: one in force on any day of it (the
    latest-starting if several). A contract starting mid-month bills that whole month."""
    start, end = month_bounds(on)
    return (
        Contract.objects.for_tenant(organization_id)
        .filter(starts_on__lt=end, ends_on__gte=start)
        .order_by("-starts_on")
        .first()
    )


def plan_price(*, plan: Plan, meter: str, on: datetime.date) -> PlanPrice | None:
    return (
        PlanPrice.objects.filter(plan=plan, meter=meter, effective_from__lte=on)
        .order_by("-effective_from")
        .first()
    )


def price_for(
    *,
    organization_id: str,
    plan: Plan,
    meter: str,
    on: datetime.date,
    contract: Contract | None = None,
) -> Price:
    """The price that applies: the active contract's for that meter, else the plan's version
    in force on ``on``. Contract prices have no included units. A meter with no price is free."""
    if contract is not None:
        cp = (
            ContractPrice.objects.for_tenant(organization_id)
            .filter(contract=contract, meter=meter)
            .first()
        )
        if cp is not None:
            return Price(cp.unit_price, Decimal(0), contract.currency, f"contract {contract.pk}")
    pp = plan_price(plan=plan, meter=meter, on=on)
    if pp is None:
        return Price(Decimal(0), Decimal(0), plan.currency, f"plan {plan.code} (no price)")
    return Price(pp.unit_price, pp.included_units, plan.currency, f"plan {plan.code}")


def billable_units(quantity: Decimal, included: Decimal) -> Decimal:
    """Units beyond the included ones (never negative)."""
    return max(Decimal(0), Decimal(quantity) - Decimal(included))


def included_share(remaining: Decimal, quantity: Decimal) -> Decimal:
    """How much of ``quantity`` the still-unused included units (``remaining``) cover: between
    0 and ``quantity``, never negative."""
    return min(max(remaining, Decimal(0)), max(Decimal(quantity), Decimal(0)))


def rate_card_on(day: datetime.date) -> RateCard | None:
    return RateCard.objects.filter(effective_from__lte=day).order_by("-effective_from").first()


def compute_cost(*, seconds: Decimal, device: str, day: datetime.date) -> Decimal:
    """What ``seconds`` of compute on ``device`` cost the operator (rate card in force on ``day``),
    unrounded (8 decimal places)."""
    card = rate_card_on(day)
    if card is None:
        return Decimal(0)
    rate = card.gpu_second_cost if device == "gpu" else card.cpu_second_cost
    return (Decimal(seconds) * rate).quantize(Decimal("0.00000001"))
