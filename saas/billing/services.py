"""Billing operations: accounts, quota and spend checks, period close, estimates, margins."""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from saas.common.errors import DomainError
from saas.metering.models import Meter, UsageEvent
from saas.tenancy.models import Organization

from . import pricing
from .invoicing import MeterCharge, compute_invoice
from .models import BillingAccount, Invoice, InvoiceLine, InvoiceNumberSequence, Plan

log = logging.getLogger(__name__)
ISSUER = "TY"
METER_LABELS = {
    Meter.TRAINING_COMPUTE_SECONDS: "Training compute",
    Meter.TRAINING_EXAMPLES: "Training examples",
    Meter.PREDICTIONS: "Predictions",
    Meter.BATCH_PREDICTION_ROWS: "Batch prediction rows",
    Meter.STORAGE_GB_HOURS: "Storage",
}


class PaymentRequired(DomainError):
    status = 402
    code = "payment-required"
    title = "A billing limit was reached"


def billing_account_get(*, organization: Organization) -> BillingAccount:
    """The organisation's billing account, created on first use from ``organization.plan``."""
    scoped = BillingAccount.objects.for_tenant(organization)
    account = scoped.select_related("plan").first()
    if account is not None:
        return account
    plan = (
        Plan.objects.filter(code=organization.plan).first()
        or Plan.objects.filter(code="free").first()
    )
    if plan is None:  # the plan tables were emptied: restore the defaults rather than fail
        from .seed import ensure_defaults

        ensure_defaults()
        plan = Plan.objects.filter(code=organization.plan).first() or Plan.objects.get(code="free")
    try:
        with transaction.atomic():
            account = scoped.create(organization=organization, plan=plan)
    except IntegrityError:
        return scoped.select_related("plan").get()
    if plan.monthly_fee > 0:
        transaction.on_commit(lambda: _subscribe_in_stripe(organization.pk))
    return account


def _subscribe_in_stripe(organization_id: str) -> None:
    """Create the Stripe customer and subscription of a paying organisation (best effort: a
    failure is logged and retried at period close, which calls ``customer_ensure`` again)."""
    from . import stripe_sync

    if not stripe_sync.stripe_enabled():
        return
    account = (
        BillingAccount.objects.for_tenant(organization_id)
        .select_related("plan", "organization")
        .get()
    )
    try:
        stripe_sync.subscription_ensure(account=account)
    except Exception:
        log.exception("creating the Stripe subscription of %s failed", organization_id)


@transaction.atomic
def billing_account_update(
    *, organization: Organization, monthly_spend_cap: Decimal | None, actor=None
) -> BillingAccount:
    """Set (or clear, with None) the organisation's monthly spend cap; audited."""
    from saas.tenancy.audit import audit_record

    account = billing_account_get(organization=organization)
    BillingAccount.objects.for_tenant(organization).filter(pk=account.pk).update(
        monthly_spend_cap=monthly_spend_cap
    )
    audit_record(
        organization_id=organization.pk,
        action="billing.spend_cap_changed",
        actor=actor,
        target_type="billing_account",
        target_id=account.pk,
        old=str(account.monthly_spend_cap),
        new=str(monthly_spend_cap),
    )
    return BillingAccount.objects.for_tenant(organization).get(pk=account.pk)


def checkout_url(*, organization: Organization, plan_code: str) -> str:
    """A Stripe Checkout URL to upgrade to a paid self-serve plan.

    Raises ValidationFailed for an unknown, free or contract-based plan, and StripeDisabled
    (409) when Stripe is not configured."""
    from saas.common.errors import ValidationFailed

    from . import stripe_sync

    plan = Plan.objects.filter(code=plan_code, contract_based=False, monthly_fee__gt=0).first()
    if plan is None:
        raise ValidationFailed(
            "Unknown plan.",
            errors=[{"field": "plan", "message": "a paid self-serve plan, e.g. pro"}],
        )
    return stripe_sync.checkout_session_create(
        account=billing_account_get(organization=organization), plan=plan
    )


def usage_totals(
    *, organization_id: str, start: datetime.date, end: datetime.date, api_key_id: str | None = None
) -> dict[str, Decimal]:
    """``{meter: quantity}`` summed over ``[start, end)`` (UTC days), optionally for one key."""
    qs = UsageEvent.objects.for_tenant(organization_id).filter(
        occurred_at__date__gte=start, occurred_at__date__lt=end
    )
    if api_key_id:
        qs = qs.filter(api_key_id=api_key_id)
    return {r["meter"]: r["q"] for r in qs.values("meter").annotate(q=Sum("quantity"))}


TRAINING_METERS = (Meter.TRAINING_COMPUTE_SECONDS, Meter.TRAINING_EXAMPLES)


def _included_share(remaining: Decimal, quantity: Decimal) -> Decimal:
    """How much of ``quantity`` the still-unused included units cover."""
    return min(max(remaining, Decimal(0)), max(Decimal(quantity), Decimal(0)))


def _charges(
    *, organization_id: str, plan: Plan, contract, totals: dict[str, Decimal], on: datetime.date
):
    """Invoice charges: one per training job and training meter (included units go to jobs in
    the order they finished, exactly as :func:`training_charge` priced them when each job
    ended), one per other meter."""
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
                .filter(meter=meter, occurred_at__date__gte=on, occurred_at__date__lt=end)
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
                included = _included_share(remaining, q)
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
    account = billing_account_get(organization=org)
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
            meter=meter, quantity__gt=0, occurred_at__date__gte=start, occurred_at__date__lt=end
        ).aggregate(q=Sum("quantity"))["q"] or Decimal(0)
        billable = pricing.billable_units(
            Decimal(q), _included_share(price.included_units - used, Decimal(q))
        )
        amount = pricing.round_money(billable * price.unit_price, currency)
        total += amount
        lines[meter] = {
            "billable": f"{billable.normalize():f}",
            "unit_price": f"{price.unit_price.normalize():f}",
            "amount": str(amount),
        }
    return total, lines, at


def period_charges(*, organization: Organization, start: datetime.date, end: datetime.date):
    """The invoice this period would produce so far (nothing is written): a ``Computed``."""
    account = billing_account_get(organization=organization)
    contract = pricing.contract_active(organization_id=organization.pk, on=start)
    totals = usage_totals(organization_id=organization.pk, start=start, end=end)
    currency = contract.currency if contract else account.plan.currency
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
        credit_balance=contract.prepaid_credit_balance if contract else Decimal(0),
        tax_rate=contract.tax_rate if contract else Decimal(0),
    )


def _next_number() -> str:
    seq, _ = InvoiceNumberSequence.objects.select_for_update().get_or_create(issuer=ISSUER)
    seq.last_number += 1
    InvoiceNumberSequence.objects.filter(pk=seq.pk).update(last_number=seq.last_number)
    return f"{ISSUER}-{seq.last_number:06d}"


def period_close(*, organization: Organization, period_start: datetime.date) -> Invoice:
    """Close ``organization``'s month starting ``period_start``: build its invoice, exactly once.

    Running it again returns the existing invoice (unique per organisation and period). Draws
    the contract's prepaid credit down by the credit applied, in the same transaction. Numbers
    are sequential per issuer. Pushes the invoice to Stripe after commit when Stripe is
    configured (SaaS plans only; contract invoices are sent on terms).
    """
    start, end = pricing.month_bounds(period_start)
    existing = Invoice.objects.for_tenant(organization).filter(period_start=start).first()
    if existing:
        if existing.contract_id is None and existing.total > 0 and not existing.stripe_invoice_id:
            _push_to_stripe(existing.pk, organization.pk)  # a push that failed earlier is retried
        return existing
    with transaction.atomic():
        from .models import Contract

        Organization.objects.select_for_update().get(pk=organization.pk)
        existing = Invoice.objects.for_tenant(organization).filter(period_start=start).first()
        if existing:
            return existing
        account = billing_account_get(organization=organization)
        contract = pricing.contract_active(organization_id=organization.pk, on=start)
        if contract is not None:
            contract = (
                Contract.objects.for_tenant(organization).select_for_update().get(pk=contract.pk)
            )
        computed = period_charges(organization=organization, start=start, end=end)
        currency = contract.currency if contract else account.plan.currency
        terms = contract.payment_terms_days if contract else 0
        totals = usage_totals(organization_id=organization.pk, start=start, end=end)
        cost = _compute_cost(organization_id=organization.pk, start=start, end=end)
        invoice = Invoice.objects.for_tenant(organization).create(
            organization=organization,
            number=_next_number(),
            period_start=start,
            period_end=end,
            currency=currency,
            contract=contract,
            plan_code=account.plan.code,
            subtotal=computed.subtotal,
            credit_applied=computed.credit_applied,
            tax_rate=contract.tax_rate if contract else Decimal(0),
            tax=computed.tax,
            total=computed.total,
            compute_cost=pricing.round_money(cost, currency),
            due_on=end + datetime.timedelta(days=terms),
            po_number=contract.po_number if contract else "",
        )
        InvoiceLine.objects.for_tenant(organization).bulk_create(
            [
                InvoiceLine(
                    organization=organization,
                    invoice=invoice,
                    position=i,
                    kind=ln.kind,
                    meter=ln.meter,
                    description=ln.description,
                    quantity=ln.quantity,
                    unit_price=ln.unit_price,
                    amount=ln.amount,
                )
                for i, ln in enumerate(computed.lines, start=1)
            ]
        )
        if contract is not None and computed.credit_applied:
            type(contract).objects.for_tenant(organization).filter(pk=contract.pk).update(
                prepaid_credit_balance=computed.credit_remaining
            )
        log.info(
            "invoice %s for %s %s: total %s %s (usage %s)",
            invoice.number,
            organization.slug,
            start,
            invoice.total,
            currency,
            {k: str(v) for k, v in totals.items()},
        )
        if contract is None and invoice.total > 0:
            transaction.on_commit(lambda: _push_to_stripe(invoice.pk, organization.pk))
    return invoice


def _push_to_stripe(invoice_id: str, organization_id: str) -> None:
    from . import stripe_sync

    if not stripe_sync.stripe_enabled():
        return
    invoice = Invoice.objects.for_tenant(organization_id).get(pk=invoice_id)
    try:
        stripe_sync.invoice_push(invoice=invoice)
    except Exception:  # retried by the next period-close run; never lose the local invoice
        log.exception("pushing invoice %s to Stripe failed; will retry", invoice.number)


def period_close_all(*, period_start: datetime.date) -> list[str]:
    """Close the period for every active organisation (Celery beat, on the 1st). Idempotent."""
    numbers = []
    for org in Organization.objects.all().order_by("created_at"):
        try:
            numbers.append(period_close(organization=org, period_start=period_start).number)
        except Exception:  # one organisation's problem must not stop everyone else's invoice
            log.exception(
                "closing %s for %s failed; it will be retried on the next run",
                period_start,
                org.slug,
            )
    return numbers


def _compute_cost(*, organization_id: str, start: datetime.date, end: datetime.date) -> Decimal:
    agg = (
        UsageEvent.objects.for_tenant(organization_id)
        .filter(occurred_at__date__gte=start, occurred_at__date__lt=end)
        .aggregate(c=Sum("compute_cost"))
    )
    return agg["c"] or Decimal(0)


# ---- checks when work is accepted ----------------------------------------------------------


def billing_check(
    *,
    organization: Organization,
    meter: str,
    quantity: Decimal,
    api_key=None,
    on: datetime.date | None = None,
) -> None:
    """Refuse work the organisation cannot be billed for, with a 402 problem saying why.

    Checks, for the month holding ``on`` (today): a hard quota (plans with hard limits, e.g.
    free: ``included_units`` of ``meter``), the organisation's monthly spend cap, and the API
    key's monthly spend cap. Running work is never stopped; this only gates new work. ``quantity``
    is the units the new work adds (0 when unknown, e.g. a training job: then the check is
    "already at the limit").
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
    cap = getattr(api_key, "monthly_spend_cap", None)
    if cap is not None:
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


# ---- estimates and job charges ----------------------------------------------------------------

# Seconds per training example per epoch on one CPU core class machine, measured with
# bench/train_defaults.py (text 5.5 s for 2400 × 10; cnn-small 17 s for 400 × 30). Used until the
# platform has measured jobs of that kind.
DEFAULT_SECONDS_PER_EXAMPLE = {
    ("text-classification", "cpu"): Decimal("0.00025"),
    ("image-classification", "cpu"): Decimal("0.0015"),
    ("text-classification", "gpu"): Decimal("0.00005"),
    ("image-classification", "gpu"): Decimal("0.0003"),
}


# Building, evaluating and exporting a model costs a few seconds whatever the data size.
OVERHEAD_SECONDS = Decimal(3)
# A job must have processed this many examples (examples × epochs) to inform the rate.
MIN_EXAMPLES_FOR_RATE = 2000


@dataclass(frozen=True)
class Estimate:
    seconds: Decimal
    low_price: Decimal
    high_price: Decimal
    currency: str
    basis: dict


def training_estimate(
    *,
    organization: Organization,
    task: str,
    base_model: str,
    device: str,
    examples: int,
    epochs: int,
) -> Estimate:
    """Estimate a training job before it runs: seconds = overhead + examples × epochs ×
    s/example, where s/example is the median (net of the overhead) of this platform's last 20
    succeeded jobs of the same task, base model and device that processed at least
    ``MIN_EXAMPLES_FOR_RATE`` examples (all tenants; only the rate is used, 3 significant
    digits), else a measured default. The price
    range is ±50 % of the seconds at the marginal compute price (plus examples)."""
    from saas.jobs.models import TrainingJob

    rows = list(
        TrainingJob.objects.unscoped_all_tenants()  # a platform-wide rate, no tenant data exposed
        .filter(status="succeeded", task=task, base_model=base_model, device=device)
        .order_by("-finished_at")
        .values_list("usage", flat=True)[:20]
    )
    # Per-example rate of recent jobs, net of the fixed overhead; jobs too small for the
    # overhead to be separated from the per-example time are left out.
    rates = sorted(
        max(Decimal(0), Decimal(str(u["wall_seconds"])) - OVERHEAD_SECONDS)
        / Decimal(u["examples_processed"])
        for u in rows
        if u and (u.get("examples_processed") or 0) >= MIN_EXAMPLES_FOR_RATE
    )
    if rates:
        mid = len(rates) // 2
        median = rates[mid] if len(rates) % 2 else (rates[mid - 1] + rates[mid]) / 2
        rate, source = (
            Decimal(format(median, ".3g")),
            f"median of {len(rates)} recent {base_model} jobs on {device}",
        )
    else:
        rate, source = (
            DEFAULT_SECONDS_PER_EXAMPLE[(task, device)],
            f"default for {task} on {device}",
        )
    seconds = (OVERHEAD_SECONDS + Decimal(examples) * Decimal(epochs) * rate).quantize(
        Decimal("0.1")
    )
    account = billing_account_get(organization=organization)
    today = timezone.now().date()
    contract = pricing.contract_active(organization_id=organization.pk, on=today)
    p_sec = pricing.price_for(
        organization_id=organization.pk,
        plan=account.plan,
        meter=Meter.TRAINING_COMPUTE_SECONDS,
        on=today,
        contract=contract,
    )
    p_ex = pricing.price_for(
        organization_id=organization.pk,
        plan=account.plan,
        meter=Meter.TRAINING_EXAMPLES,
        on=today,
        contract=contract,
    )
    mid = seconds * p_sec.unit_price + Decimal(examples * epochs) * p_ex.unit_price
    currency = p_sec.currency
    return Estimate(
        seconds=seconds,
        low_price=pricing.round_money(mid * Decimal("0.5"), currency),
        high_price=pricing.round_money(mid * Decimal("1.5"), currency),
        currency=currency,
        basis={
            "examples": examples,
            "epochs": epochs,
            "seconds_per_example": f"{rate.normalize():f}",
            "overhead_seconds": str(OVERHEAD_SECONDS),
            "rate_source": source,
            "price_per_second": str(p_sec.unit_price.normalize()),
            "price_per_example": str(p_ex.unit_price.normalize()),
            "note": "marginal list prices; included units of your plan may make it free",
        },
    )


def job_charge(
    *, organization_id: str, seconds: Decimal, examples: int, on: datetime.date
) -> Decimal:
    """A job's charge at the marginal list price (before included units), rounded once."""
    org = Organization.objects.get(pk=organization_id)
    account = billing_account_get(organization=org)
    contract = pricing.contract_active(organization_id=organization_id, on=on)
    p_sec = pricing.price_for(
        organization_id=organization_id,
        plan=account.plan,
        meter=Meter.TRAINING_COMPUTE_SECONDS,
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


# ---- unit economics ---------------------------------------------------------------------------


def margins(*, start: datetime.date) -> list[dict]:
    """Per organisation for the month starting ``start``: revenue (invoiced total before tax),
    compute cost (usage events × rate card), gross margin and margin %. For operators."""
    s, e = pricing.month_bounds(start)
    out = []
    for org in Organization.objects.all().order_by("slug"):
        inv = Invoice.objects.for_tenant(org).filter(period_start=s).first()
        revenue = (inv.total - inv.tax) if inv else Decimal(0)
        cost = pricing.round_money(_compute_cost(organization_id=org.pk, start=s, end=e), "usd")
        margin = revenue - cost
        out.append(
            {
                "organization": org.slug,
                "revenue": revenue,
                "compute_cost": cost,
                "gross_margin": margin,
                "margin_pct": (margin / revenue * 100).quantize(Decimal("0.1"))
                if revenue
                else None,
            }
        )
    return out


def storage_sample(*, at: datetime.datetime | None = None) -> int:
    """Record one hour of storage per organisation (meter ``storage_gb_hours``): the bytes of
    live datasets and model artifacts, in GB (10^9 bytes) × 1 hour. Idempotent per hour (the
    hour is the usage event's source). Run hourly by Celery beat; returns events written."""
    from saas.datasets.models import Dataset
    from saas.metering.services import usage_record
    from saas.registry.models import TrainedModel

    hour = (at or timezone.now()).replace(minute=0, second=0, microsecond=0)
    written = 0
    for org in Organization.objects.all():
        data = (
            Dataset.objects.for_tenant(org)
            .exclude(status="deleted")
            .aggregate(b=Sum("size_bytes"))["b"]
            or 0
        )
        models_ = TrainedModel.objects.for_tenant(org).aggregate(b=Sum("artifact_bytes"))["b"] or 0
        total = data + models_
        if not total:
            continue
        with transaction.atomic():
            _, created = usage_record(
                organization_id=org.pk,
                meter=Meter.STORAGE_GB_HOURS,
                quantity=Decimal(total) / Decimal(10**9),
                occurred_at=hour,
                source_type="storage_sample",
                source_id=f"{org.pk}:{hour:%Y-%m-%dT%H}",
                dimensions={"dataset_bytes": data, "model_bytes": models_},
            )
        written += int(created)
    return written


def period_close_previous_month(*, today: datetime.date | None = None) -> list[str]:
    """Close last month for everyone (Celery beat on the 1st; safe to run any day, twice)."""
    today = today or timezone.now().date()
    first_of_this = today.replace(day=1)
    previous = (first_of_this - datetime.timedelta(days=1)).replace(day=1)
    return period_close_all(period_start=previous)


WARNING_THRESHOLDS = (80, 100)


def usage_levels(*, organization: Organization, on: datetime.date | None = None) -> list[dict]:
    """Per meter with included units: ``{"meter", "used", "included", "percent"}`` this month."""
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


def usage_warnings_send(
    *, organization: Organization, on: datetime.date | None = None
) -> list[str]:
    """Email owners and billing members once per meter and month when usage of included units
    (or a free plan's quota) crosses 80 % and 100 %. Returns the warnings sent
    (``"2026-05:predictions:80"``). Run hourly by Celery beat; the dashboard shows the same
    levels through ``GET /v1/billing``."""
    from django.core.mail import send_mail

    from saas.tenancy.models import Membership

    on = on or timezone.now().date()
    sent = []
    with transaction.atomic():
        account = (
            BillingAccount.objects.for_tenant(organization)
            .select_for_update()
            .get(pk=billing_account_get(organization=organization).pk)
        )
        warned = dict(account.warned or {})
        for level in usage_levels(organization=organization, on=on):
            for threshold in WARNING_THRESHOLDS:
                key = f"{on:%Y-%m}:{level['meter']}:{threshold}"
                if level["percent"] >= threshold and key not in warned:
                    warned[key] = timezone.now().isoformat()
                    sent.append(key)
        if sent:
            BillingAccount.objects.for_tenant(organization).filter(pk=account.pk).update(
                warned=warned
            )
            to = list(
                Membership.objects.filter(
                    organization=organization, role__in=["owner", "billing"]
                ).values_list("user__email", flat=True)
            )
            lines = "\n".join(
                f"- {k.split(':')[1]}: {k.split(':')[2]} % of the month's included units"
                for k in sent
            )
            body = f"{organization.name} has used:\n{lines}\n\n" + (
                "Requests over the free plan's quotas are refused until the month resets; upgrade to continue."
                if account.plan.hard_limits
                else "Usage beyond the included units is billed at overage prices."
            )
            transaction.on_commit(
                lambda: send_mail(f"Trainyard usage alert for {organization.name}", body, None, to)
            )
    return sent


def usage_warnings_send_all() -> int:
    return sum(len(usage_warnings_send(organization=org)) for org in Organization.objects.all())
