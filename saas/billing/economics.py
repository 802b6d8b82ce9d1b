"""Unit economics per tenant and per plan for one calendar month: revenue against what the
tenant's usage cost the operator, meter by meter.

For operators only: it reads every tenant (``unscoped_all_tenants``) and is shown in the
console. Definitions (the console page states them too):

- **Revenue, invoiced**: the month's invoice, ``total − tax`` (after credit), once the period
  has closed. **Accrued**: while no invoice exists, what the invoice would be for the usage
  recorded so far (:func:`saas.billing.selectors.period_charges`, the same computation period
  close runs, nothing written), so at close accrued becomes invoiced with no jump for the same
  usage. Revenue is whichever of the two applies.
- **Cost** per meter: the ``compute_cost`` the ledger holds on each usage event, which the
  writer priced with the rate card in force that day: training CPU and GPU seconds (the
  worker's measured resources), inference CPU seconds (the data plane's CPU meter,
  ``serve.cpumeter``), storage GB-hours (the hourly sample). Rounded to the cent with the
  largest-remainder method, so the meters add up to the rounded total exactly.
- **Gross margin** = revenue − cost; **margin %** = margin / revenue × 100 (None without
  revenue). Revenue in a currency other than the rate card's has no margin (no FX here).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from django.db.models import DecimalField, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from saas.metering.models import Meter, UsageEvent
from saas.tenancy.models import Organization

from . import pricing
from .models import BillingAccount, Invoice, RateCard
from .selectors import billing_currency, period_charges

# The meters that carry an operator cost, in the order the console shows them.
COST_METERS: dict[str, str] = {
    Meter.TRAINING_COMPUTE_SECONDS: "Training CPU",
    Meter.TRAINING_GPU_SECONDS: "Training GPU",
    Meter.PREDICTIONS: "Inference CPU",
    Meter.STORAGE_GB_HOURS: "Storage",
}
ZERO = Decimal(0)


@dataclass
class TenantEconomics:
    """One tenant's month. Money is Decimal in ``currency`` (revenue) and the rate card's
    currency (cost), rounded to the cent; ``inference_cpu_seconds`` is a Decimal of seconds."""

    organization_id: str
    organization: str  # slug
    name: str
    plan: str
    currency: str
    invoice_number: str | None
    revenue_invoiced: Decimal
    revenue_accrued: Decimal
    cost_by_meter: dict[str, Decimal]
    cost: Decimal
    inference_cpu_seconds: Decimal
    comparable: bool  # revenue and cost are in the same currency

    @property
    def revenue(self) -> Decimal:
        return self.revenue_invoiced if self.invoice_number else self.revenue_accrued

    @property
    def costs_in_order(self) -> list[Decimal]:
        """Cost per meter in :data:`COST_METERS` order (for tables)."""
        return [self.cost_by_meter.get(m, ZERO) for m in COST_METERS]

    @property
    def gross_margin(self) -> Decimal | None:
        return self.revenue - self.cost if self.comparable else None

    @property
    def margin_pct(self) -> Decimal | None:
        m = self.gross_margin
        if m is None or not self.revenue:
            return None
        return (m / self.revenue * 100).quantize(Decimal("0.1"))

    @property
    def losing(self) -> bool:
        m = self.gross_margin
        return m is not None and m < 0


@dataclass
class PlanEconomics:
    """Totals over the tenants on one plan (same units as :class:`TenantEconomics`)."""

    plan: str
    tenants: int = 0
    losing: int = 0
    revenue: Decimal = ZERO
    cost: Decimal = ZERO
    cost_by_meter: dict[str, Decimal] = field(
        default_factory=lambda: dict.fromkeys(COST_METERS, ZERO)
    )

    @property
    def costs_in_order(self) -> list[Decimal]:
        return [self.cost_by_meter.get(m, ZERO) for m in COST_METERS]

    @property
    def gross_margin(self) -> Decimal:
        return self.revenue - self.cost

    @property
    def margin_pct(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.gross_margin / self.revenue * 100).quantize(Decimal("0.1"))


@dataclass
class MonthEconomics:
    """The month ``[start, end)``; ``as_of`` is the last day with usage counted (accruals)."""

    start: datetime.date
    end: datetime.date
    as_of: datetime.date
    cost_currency: str
    tenants: list[TenantEconomics]
    plans: list[PlanEconomics]


def round_shares(parts: dict[str, Decimal], currency: str) -> tuple[dict[str, Decimal], Decimal]:
    """Round ``parts`` to the currency's minor unit so that they sum to the rounded total:
    each part is rounded down, then the minor units still missing go to the parts with the
    largest remainders (Hamilton's largest-remainder method). Returns ``(rounded parts,
    rounded total)``. Parts may be negative (a correction); then plain half-up rounding of
    the total is kept and the residue goes to the largest part."""
    unit = pricing.minor_unit(currency)
    total = pricing.round_money(sum(parts.values(), ZERO), currency)
    floors = {k: v.quantize(unit, rounding=ROUND_DOWN) for k, v in parts.items()}
    missing = int((total - sum(floors.values(), ZERO)) / unit)
    if missing > 0:
        order = sorted(parts, key=lambda k: (parts[k] - floors[k], parts[k]), reverse=True)
        for k in order[:missing]:
            floors[k] += unit
    elif missing < 0 and floors:
        biggest = max(floors, key=lambda k: floors[k])
        floors[biggest] += unit * missing
    return floors, total


def unit_economics(*, start: datetime.date, today: datetime.date | None = None) -> MonthEconomics:
    """Every tenant's economics for the month holding ``start`` (see the module doc).

    ``today`` (default: now, UTC) bounds the accrual: usage up to and including it. A fixed
    number of queries plus one invoice preview per tenant without an invoice that month.
    """
    s, e = pricing.month_bounds(start)
    today = today or timezone.now().date()
    accrue_to = min(e, today + datetime.timedelta(days=1))
    card = RateCard.objects.filter(effective_from__lt=e).order_by("-effective_from").first()
    cost_currency = card.currency if card else "usd"

    accounts: dict[str, dict] = {
        a["organization_id"]: dict(a)
        for a in BillingAccount.objects.unscoped_all_tenants().values(
            "organization_id", "plan__code", "plan__currency"
        )
    }
    invoices = {
        i.organization_id: i for i in Invoice.objects.unscoped_all_tenants().filter(period_start=s)
    }
    events = UsageEvent.objects.unscoped_all_tenants().filter(**pricing.occurred_in(s, e))
    costs: dict[str, dict[str, Decimal]] = {}
    for row in events.values("organization_id", "meter").annotate(c=Sum("compute_cost")):
        costs.setdefault(row["organization_id"], {})[row["meter"]] = row["c"] or ZERO
    cpu = {
        row["organization_id"]: row["s"] or ZERO
        for row in events.filter(meter=Meter.PREDICTIONS)
        .annotate(
            cpu=Cast(KT("dimensions__cpu_seconds"), DecimalField(max_digits=20, decimal_places=6))
        )
        .values("organization_id")
        .annotate(s=Sum("cpu"))
    }

    tenants: list[TenantEconomics] = []
    for org in Organization.objects.order_by("slug"):
        account = accounts.get(org.pk, {})
        inv = invoices.get(org.pk)
        if inv is not None:
            currency = inv.currency
            invoiced, accrued = inv.total - inv.tax, ZERO
        elif s <= today and account:
            preview = period_charges(organization=org, start=s, end=accrue_to)
            # The preview is in the currency its invoice will be: the contract's when one
            # governs the month, not the plan's.
            currency = billing_currency(organization=org, on=s)
            invoiced, accrued = ZERO, preview.subtotal - preview.credit_applied
        else:  # a month still to come, or no billing account (an invariant broken elsewhere)
            currency = account.get("plan__currency", cost_currency)
            invoiced = accrued = ZERO
        raw = {m: costs.get(org.pk, {}).get(m, ZERO) for m in COST_METERS}
        # A meter outside COST_METERS with a cost (none today) still counts in the total.
        other = sum((v for m, v in costs.get(org.pk, {}).items() if m not in COST_METERS), ZERO)
        if other:
            raw["other"] = other
        by_meter, cost = round_shares(raw, cost_currency)
        tenants.append(
            TenantEconomics(
                organization_id=org.pk,
                organization=org.slug,
                name=org.name,
                plan=account.get("plan__code", ""),
                currency=currency,
                invoice_number=(inv.number or inv.pk) if inv is not None else None,
                revenue_invoiced=invoiced,
                revenue_accrued=accrued,
                cost_by_meter=by_meter,
                cost=cost,
                inference_cpu_seconds=cpu.get(org.pk, ZERO),
                comparable=currency == cost_currency,
            )
        )

    plans: dict[str, PlanEconomics] = {}
    for t in tenants:
        if not t.comparable:
            continue  # summing another currency's revenue would be wrong
        p = plans.setdefault(t.plan, PlanEconomics(plan=t.plan))
        p.tenants += 1
        p.losing += int(t.losing)
        p.revenue += t.revenue
        p.cost += t.cost
        for m, v in t.cost_by_meter.items():
            p.cost_by_meter[m] = p.cost_by_meter.get(m, ZERO) + v
    return MonthEconomics(
        start=s,
        end=e,
        as_of=accrue_to - datetime.timedelta(days=1),
        cost_currency=cost_currency,
        tenants=tenants,
        plans=[plans[k] for k in sorted(plans)],
    )


def margins(*, start: datetime.date) -> list[dict]:
    """:func:`unit_economics` as plain rows: ``{"organization" (slug), "revenue",
    "compute_cost", "gross_margin", "margin_pct"}`` (Decimals; margin_pct None without
    revenue), every tenant, by slug."""
    return [
        {
            "organization": t.organization,
            "revenue": t.revenue,
            "compute_cost": t.cost,
            "gross_margin": t.gross_margin,
            "margin_pct": t.margin_pct,
        }
        for t in unit_economics(start=start).tenants
    ]
