"""Reads of billing data: accounts, usage, the period's charges so far, invoices, margins.

Nothing here writes (no INSERT, UPDATE or Stripe call), so every GET path can use it: the
billing account is ensured when the organisation is created (see ``services.accounts``), not
on first read. Tenant-owned reads are scoped to the organisation passed in; :func:`margins` is
the operator's cross-tenant report.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, fields
from decimal import Decimal

from django.db.models import IntegerField, QuerySet, Subquery, Sum
from django.utils import timezone

from saas.common.errors import DomainError, NotFound
from saas.common.ttlcache import TTLCache
from saas.metering.models import Meter, UsageEvent, compute_meter_for
from saas.tenancy.models import Organization

from . import pricing
from .invoicing import Computed, MeterCharge, compute_invoice
from .models import BillingAccount, Contract, CreditLedgerEntry, Invoice, Plan

METER_LABELS: dict[str, str] = {
    Meter.TRAINING_COMPUTE_SECONDS: "Training compute",
    Meter.TRAINING_GPU_SECONDS: "Training GPU compute",
    Meter.TRAINING_EXAMPLES: "Training examples",
    Meter.PREDICTIONS: "Predictions",
    Meter.BATCH_PREDICTION_ROWS: "Batch prediction rows",
    Meter.STORAGE_GB_HOURS: "Storage",
}
TRAINING_METERS = (
    Meter.TRAINING_COMPUTE_SECONDS,
    Meter.TRAINING_GPU_SECONDS,
    Meter.TRAINING_EXAMPLES,
)


class BillingAccountMissing(DomainError):
    """The organisation has no billing account: an invariant is broken (accounts are created
    with the organisation, and migration 0003 created them for older ones)."""

    status = 500
    code = "billing-account-missing"
    title = "The organisation has no billing account"


def billing_account_get(*, organization: Organization | str) -> BillingAccount:
    """The organisation's billing account, with its plan (one query, never writes).

    ``organization`` is an Organization or its id. Raises :class:`BillingAccountMissing` when
    there is none (see the class for why that cannot happen in a migrated database).
    """
    account = BillingAccount.objects.for_tenant(organization).select_related("plan").first()
    if account is None:
        org_id = getattr(organization, "pk", organization)
        raise BillingAccountMissing(f"Organisation {org_id} has no billing account.")
    return account


@dataclass(frozen=True)
class PlanLimits:
    """What an organisation's plan allows, read from its ``Plan`` row.

    Attributes:
        plan: the plan's code (e.g. ``"free"``).
        requests_per_key: requests per rate-limit window per API key or signed-in user.
        requests_per_organization: requests per rate-limit window for the whole organisation.
        max_running_jobs: training jobs that may run at once.
        max_active_jobs: training jobs that may be queued or running at once.
        max_classes: classes an uploaded dataset may have.
    """

    plan: str
    requests_per_key: int
    requests_per_organization: int
    max_running_jobs: int
    max_active_jobs: int
    max_classes: int


_LIMIT_FIELDS = tuple(f.name for f in fields(PlanLimits))
# The Plan columns behind PlanLimits' fields, in its order ("plan" is the plan's code).
_LIMIT_COLUMNS = tuple("plan__code" if f == "plan" else f"plan__{f}" for f in _LIMIT_FIELDS)


def plan_limits_get(*, organization: Organization | str) -> PlanLimits:
    """The limits of the plan the organisation's billing account is on (one query, never
    writes). ``organization`` is an Organization or its id.

    Raises :class:`BillingAccountMissing` if the organisation has no account."""
    row = BillingAccount.objects.for_tenant(organization).values_list(*_LIMIT_COLUMNS).first()
    if row is None:
        org_id = getattr(organization, "pk", organization)
        raise BillingAccountMissing(f"Organisation {org_id} has no billing account.")
    return PlanLimits(*row)


# organisation id -> its plan's limits, trusted for at most TRAINYARD_REQUEST_CACHE_SECONDS (≤ 1 s,
# saas.common.ttlcache): read on every request for the rate limiter, so a plan change or an
# edit of a Plan row in the admin reaches every web process within 1 s.
_request_limits: TTLCache[str, PlanLimits] = TTLCache()


def plan_limits_for_request(*, organization_id: str) -> PlanLimits:
    """:func:`plan_limits_get` as the request path's rate limiter reads it: at most once per
    ``TRAINYARD_REQUEST_CACHE_SECONDS`` (≤ 1 s) per process and organisation, so at most that
    stale. Not for decisions taken under the organisation's lock (job admission reads
    :func:`plan_limits_get`). Raises :class:`BillingAccountMissing` as it does."""
    limits = _request_limits.get(
        organization_id, lambda: plan_limits_get(organization=organization_id)
    )
    assert limits is not None  # plan_limits_get raises rather than returning None
    return limits


def plan_limit_subquery(*, organization_id: str, limit: str) -> Subquery:
    """One of the organisation's plan limits (``limit``: a :class:`PlanLimits` field other
    than ``plan``, e.g. ``"max_running_jobs"``) as a scalar subquery, for a list read to
    annotate its rows with in the same SQL query (an integer, NULL without an account).

    Raises ValueError for an unknown ``limit``."""
    if limit not in _LIMIT_FIELDS or limit == "plan":
        raise ValueError(f"not a plan limit: {limit!r}")
    return Subquery(
        BillingAccount.objects.for_tenant(organization_id).values(f"plan__{limit}")[:1],
        output_field=IntegerField(),
    )


def invoice_list(*, organization: Organization) -> QuerySet[Invoice]:
    """The organisation's invoices, newest period first (the API's paginator orders by its own
    cursor)."""
    return (
        Invoice.objects.for_tenant(organization)
        .select_related("organization", "contract")
        .order_by("-period_start", "-pk")
    )


def plan_list_self_serve() -> QuerySet[Plan]:
    """The plans a customer can choose in the dashboard (not contract-based), cheapest first."""
    return Plan.objects.filter(contract_based=False).order_by("monthly_fee")


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    """One of the organisation's invoices. Raises ``NotFound`` if missing or another tenant's."""
    invoice = invoice_list(organization=organization).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id!r}.")
    return invoice


def usage_totals(
    *, organization_id: str, start: datetime.date, end: datetime.date, api_key_id: str | None = None
) -> dict[str, Decimal]:
    """``{meter: quantity}`` summed over ``[start, end)`` (UTC days), optionally for one key."""
    qs = UsageEvent.objects.for_tenant(organization_id).filter(**pricing.occurred_in(start, end))
    if api_key_id:
        qs = qs.filter(api_key_id=api_key_id)
    return {r["meter"]: r["q"] for r in qs.values("meter").annotate(q=Sum("quantity"))}


def usage_compute_cost(
    *, organization_id: str, start: datetime.date, end: datetime.date
) -> Decimal:
    """What the organisation's usage in ``[start, end)`` cost the operator (rate card), unrounded."""
    agg = (
        UsageEvent.objects.for_tenant(organization_id)
        .filter(**pricing.occurred_in(start, end))
        .aggregate(c=Sum("compute_cost"))
    )
    return agg["c"] or Decimal(0)


def _charges(
    *,
    organization_id: str,
    plan: Plan,
    contract: Contract | None,
    totals: dict[str, Decimal],
    on: datetime.date,
) -> list[MeterCharge]:
    """Invoice charges: one per training job and training meter (included units go to jobs in
    the order they finished, exactly as ``training_charge`` priced them when each job ended),
    one per other meter."""
    _, end = pricing.month_bounds(on)
    out = []
    for meter in Meter.values:
        qty = totals.get(meter, Decimal(0))
        if qty == 0:
            continue
        price = pricing.price_for(
            organization_id=organization_id, plan=plan, meter=meter, on=on, contract=contract
        )
        label = METER_LABELS.get(meter, meter)
        if meter in TRAINING_METERS:
            remaining = price.included_units
            events = (
                UsageEvent.objects.for_tenant(organization_id)
                .filter(meter=meter, **pricing.occurred_in(on, end))
                .order_by("occurred_at", "id")
                .values_list("source_type", "source_id", "quantity")
            )
            for source_type, source_id, q in events:
                if q < 0:  # a correction: credited at the unit price, included units untouched
                    out.append(
                        MeterCharge(
                            meter,
                            Decimal(q),
                            Decimal(0),
                            price.unit_price,
                            f"{label}, correction {source_id}, {price.source}",
                            signed=True,
                        )
                    )
                    continue
                included = pricing.included_share(remaining, q)
                remaining -= included
                what = (
                    f"job {source_id}"
                    if source_type == "training_job"
                    else f"{source_type} {source_id}"
                )
                out.append(
                    MeterCharge(
                        meter,
                        Decimal(q),
                        included,
                        price.unit_price,
                        f"{label}, {what}, {price.source}",
                    )
                )
            continue
        out.append(
            MeterCharge(
                meter,
                Decimal(qty),
                price.included_units,
                price.unit_price,
                f"{label}, {price.source}",
            )
        )
    return out


def billing_currency(*, organization: Organization, on: datetime.date | None = None) -> str:
    """The currency ``organization`` is invoiced in on ``on`` (default today): its active
    contract's, else its plan's (what period close uses)."""
    on = on or timezone.now().date()
    contract = pricing.contract_active(organization_id=organization.pk, on=on)
    if contract is not None:
        return contract.currency
    return billing_account_get(organization=organization).plan.currency


def credit_balance(*, organization: Organization | str, currency: str | None = None) -> Decimal:
    """The organisation's credit ledger balance in ``currency`` (default: its billing currency
    today): grants less drawdowns, a Decimal ≥ 0 (Decimal('0') without entries).

    Entries in another currency are not counted: credit is applied only to invoices in its
    own currency. Contract prepaid money is not part of it (``Contract.prepaid_credit_balance``).
    """
    if currency is None:
        org = (
            organization
            if isinstance(organization, Organization)
            else Organization.objects.get(pk=organization)
        )
        currency = billing_currency(organization=org)
    total = (
        CreditLedgerEntry.objects.for_tenant(organization)
        .filter(currency=currency)
        .aggregate(total=Sum("amount"))["total"]
    )
    return total if total is not None else Decimal("0.00")


def credit_ledger_list(*, organization: Organization | str) -> QuerySet[CreditLedgerEntry]:
    """The organisation's credit ledger, newest first, with each entry's invoice and creator
    (a QuerySet; slice it)."""
    return (
        CreditLedgerEntry.objects.for_tenant(organization)
        .select_related("invoice", "created_by")
        .order_by("-created_at", "-pk")
    )


def period_charges(
    *,
    organization: Organization,
    start: datetime.date,
    end: datetime.date,
    ledger_credit: Decimal | None = None,
) -> Computed:
    """The invoice the period ``[start, end)`` would produce so far (nothing is written).

    The credit available to it is the active contract's prepaid balance plus the credit
    ledger's balance in the invoice's currency; ``ledger_credit`` is that ledger balance when
    the caller has already read it (period close, under its lock), else it is read here.
    """
    account = billing_account_get(organization=organization)
    contract = pricing.contract_active(organization_id=organization.pk, on=start)
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    currency = contract.currency if contract else account.plan.currency
    if ledger_credit is None:
        ledger_credit = credit_balance(organization=organization, currency=currency)
    prepaid = contract.prepaid_credit_balance if contract else Decimal(0)
    return compute_invoice(
        currency=currency,
        subscription_fee=Decimal(0) if contract else account.plan.monthly_fee,
        subscription_label=f"{account.plan.name} plan, {start:%B %Y}",
        charges=_charges(
            organization_id=organization.pk,
            plan=account.plan,
            contract=contract,
            totals=totals,
            on=start,
        ),
        committed_minimum=contract.committed_monthly_minimum if contract else Decimal(0),
        credit_balance=prepaid + max(ledger_credit, Decimal(0)),
        credit_label="Prepaid credit applied" if contract else "Credit applied",
        tax_rate=contract.tax_rate if contract else Decimal(0),
    )


def usage_levels(*, organization: Organization, on: datetime.date | None = None) -> list[dict]:
    """Per meter with included units: ``{"meter", "used", "included", "percent"}`` for the
    month holding ``on`` (default today); ``used`` and ``included`` are Decimals in the
    meter's units, ``percent`` an int (may exceed 100)."""
    on = on or timezone.now().date()
    start, end = pricing.month_bounds(on)
    account = billing_account_get(organization=organization)
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    out = []
    for meter in Meter.values:
        price = pricing.price_for(
            organization_id=organization.pk, plan=account.plan, meter=meter, on=on
        )
        if price.included_units <= 0:
            continue
        used = totals.get(meter, Decimal(0))
        out.append(
            {
                "meter": meter,
                "used": used,
                "included": price.included_units,
                "percent": int(used * 100 / price.included_units),
            }
        )
    return out


def job_charge(
    *,
    organization_id: str,
    seconds: Decimal,
    examples: int,
    on: datetime.date,
    device: str = "cpu",
) -> Decimal:
    """A job's charge at the marginal list price (before included units), rounded once, in
    the currency of the plan's (or contract's) compute price; ``seconds`` are priced on the
    meter of ``device`` (``training_gpu_seconds`` for ``"gpu"``)."""
    account = billing_account_get(organization=organization_id)
    contract = pricing.contract_active(organization_id=organization_id, on=on)
    p_sec = pricing.price_for(
        organization_id=organization_id,
        plan=account.plan,
        meter=compute_meter_for(device),
        on=on,
        contract=contract,
    )
    p_ex = pricing.price_for(
        organization_id=organization_id,
        plan=account.plan,
        meter=Meter.TRAINING_EXAMPLES,
        on=on,
        contract=contract,
    )
    return pricing.round_money(
        Decimal(seconds) * p_sec.unit_price + Decimal(examples) * p_ex.unit_price, p_sec.currency
    )
