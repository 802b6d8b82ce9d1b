"""The training estimate: job history (how fast recent jobs ran) priced by billing.

It lives in jobs because it reads ``TrainingJob`` rows; billing prices it and never imports
jobs (jobs and inference call billing, not the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from saas.billing import pricing
from saas.billing.selectors import billing_account_get
from saas.contract.tasks import IMAGE, TEXT
from saas.metering.models import Meter, compute_meter_for
from saas.tenancy.models import Organization

from .models import TrainingJob

# Seconds per training example per epoch on one CPU core class machine, measured with
# bench/train_defaults.py (text 5.5 s for 2400 × 10; cnn-small 17 s for 400 × 30). The prior
# until enough tenants have measured jobs of that kind, and the anchor of its clamp after.
DEFAULT_SECONDS_PER_EXAMPLE = {
    (TEXT, "cpu"): Decimal("0.00025"),
    (IMAGE, "cpu"): Decimal("0.0015"),
    (TEXT, "gpu"): Decimal("0.00005"),
    (IMAGE, "gpu"): Decimal("0.0003"),
}


# Building, evaluating and exporting a model costs a few seconds whatever the data size.
OVERHEAD_SECONDS = Decimal(3)
# A job must have processed this many examples (examples × epochs) to inform the rate.
MIN_EXAMPLES_FOR_RATE = 2000
# Each tenant's rate is the median of its own last jobs of the same kind.
JOBS_PER_TENANT = 20
# The platform prior is the median over tenants of each tenant's median: one tenant is one
# vote, however many jobs it runs. Below this many tenants with history the measured default
# is the prior (a median of one or two tenants would be those tenants' own figures).
MIN_TENANTS_FOR_PRIOR = 3
# Only this many most recently active tenants vote, so the read stays bounded.
PRIOR_TENANTS = 50
# ... and the prior never leaves [default / PRIOR_CLAMP, default × PRIOR_CLAMP]: even many
# colluding tenants cannot move anyone's estimate further than that from the measured figure.
PRIOR_CLAMP = Decimal(4)
# The prior weighs as this many of the tenant's own jobs (shrinkage, in log space: a tenant
# with 3 jobs gets the geometric mean of its median and the prior).
PRIOR_WEIGHT = 3


@dataclass(frozen=True)
class Estimate:
    """A training job's estimate: ``seconds`` of compute, a price range (Decimals in
    ``currency``) and the ``basis`` it was computed from (strings, for display).

    ``quantities`` is ``{meter: Decimal}``: what the job is expected to add to each meter
    (compute seconds on its device's meter, training examples = examples × epochs); job
    submission reserves it against the plan's quotas and the spend cap."""

    seconds: Decimal
    low_price: Decimal
    high_price: Decimal
    currency: str
    basis: dict
    quantities: dict[str, Decimal]
    charge: Decimal  # the expected charge at the marginal price (before included units)


def _rate(usage: dict) -> Decimal | None:
    """A job's seconds per example net of the overhead, or None for a job too small to say."""
    if not usage or (usage.get("examples_processed") or 0) < MIN_EXAMPLES_FOR_RATE:
        return None
    wall = Decimal(str(usage.get("wall_seconds") or 0))
    return max(Decimal(0), wall - OVERHEAD_SECONDS) / Decimal(usage["examples_processed"])


def _median(values: list[Decimal]) -> Decimal:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def _tenant_rates(
    *, task: str, base_model: str, device: str, organization_id: str | None
) -> dict[str, list[Decimal]]:
    """``{organization id: [rates of its last JOBS_PER_TENANT succeeded jobs]}`` for one kind
    of job: one organisation's (``organization_id``) or, for the prior, the
    ``PRIOR_TENANTS`` most recently active ones (one SQL query, a window per tenant)."""
    base = (
        TrainingJob.objects.for_tenant(organization_id)
        if organization_id is not None
        # The prior is an aggregate over tenants; no row or figure of one is ever shown.
        else TrainingJob.objects.unscoped_all_tenants()
    ).filter(
        status="succeeded",
        task=task,
        base_model=base_model,
        device=device,
        usage__examples_processed__gte=MIN_EXAMPLES_FOR_RATE,
    )
    ranked = base.annotate(
        nth=Window(
            RowNumber(),
            partition_by=[F("organization_id")],
            order_by=F("finished_at").desc(nulls_last=True),
        )
    ).filter(nth__lte=JOBS_PER_TENANT)
    out: dict[str, list[Decimal]] = {}
    for org_id, usage in ranked.values_list("organization_id", "usage"):
        rate = _rate(usage)
        if rate is not None:
            out.setdefault(org_id, []).append(rate)
    if organization_id is None and len(out) > PRIOR_TENANTS:
        latest = (
            base.values("organization_id")
            .annotate(last=Max("finished_at"))
            .order_by(F("last").desc(nulls_last=True))
            .values_list("organization_id", flat=True)[:PRIOR_TENANTS]
        )
        out = {k: out[k] for k in latest if k in out}
    return out


def platform_prior(*, task: str, base_model: str, device: str) -> Decimal:
    """Seconds per example for this kind of job on this platform (2 significant digits): the
    median over tenants of each tenant's median rate, clamped to ``PRIOR_CLAMP`` × the
    measured default either way; the default itself below ``MIN_TENANTS_FOR_PRIOR`` tenants."""
    default = DEFAULT_SECONDS_PER_EXAMPLE[(task, device)]
    per_tenant = _tenant_rates(
        task=task, base_model=base_model, device=device, organization_id=None
    )
    if len(per_tenant) < MIN_TENANTS_FOR_PRIOR:
        return default
    prior = _median([_median(r) for r in per_tenant.values()])
    prior = min(max(prior, default / PRIOR_CLAMP), default * PRIOR_CLAMP)
    return Decimal(format(prior, ".2g"))


def tenant_rate(
    *, organization_id: str, task: str, base_model: str, device: str
) -> tuple[Decimal, int]:
    """``(seconds per example, jobs of the tenant it used)``: the tenant's own median shrunk
    towards the platform prior in log space, the prior weighing ``PRIOR_WEIGHT`` jobs; the
    prior alone for a tenant without history. 3 significant digits."""
    prior = platform_prior(task=task, base_model=base_model, device=device)
    own = _tenant_rates(
        task=task, base_model=base_model, device=device, organization_id=organization_id
    ).get(organization_id, [])
    if not own:
        return prior, 0
    # A zero rate (all overhead) would have no logarithm; a microsecond per example is below
    # anything measured.
    median = max(_median(own), Decimal("0.000001"))
    n = len(own)
    log_rate = (n * median.ln() + PRIOR_WEIGHT * prior.ln()) / (n + PRIOR_WEIGHT)
    return Decimal(format(log_rate.exp(), ".3g")), n


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
    s/example, where s/example is the organisation's own recent rate (its last
    ``JOBS_PER_TENANT`` succeeded jobs of the same task, base model and device that processed
    at least ``MIN_EXAMPLES_FOR_RATE`` examples) shrunk towards the platform prior (see
    :func:`tenant_rate`, :func:`platform_prior`). No other tenant can move it further than
    ``PRIOR_CLAMP`` from the measured default, and the basis names nothing of theirs. The
    price range is ±50 % of the seconds at the marginal compute price (plus examples)."""
    rate, own_jobs = tenant_rate(
        organization_id=organization.pk, task=task, base_model=base_model, device=device
    )
    source = (
        f"platform prior and {own_jobs} of your {base_model} jobs on {device}"
        if own_jobs
        else f"platform prior for {base_model} on {device} (no jobs of yours yet)"
    )
    seconds = (OVERHEAD_SECONDS + Decimal(examples) * Decimal(epochs) * rate).quantize(
        Decimal("0.1")
    )
    compute_meter = compute_meter_for(device)
    account = billing_account_get(organization=organization)
    today = timezone.now().date()
    contract = pricing.contract_active(organization_id=organization.pk, on=today)
    p_sec = pricing.price_for(
        organization_id=organization.pk,
        plan=account.plan,
        meter=compute_meter,
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
        quantities={
            compute_meter: seconds,
            Meter.TRAINING_EXAMPLES: Decimal(examples) * Decimal(epochs),
        },
        charge=pricing.round_money(mid, currency),
        basis={
            "examples": examples,
            "epochs": epochs,
            "seconds_per_example": f"{rate.normalize():f}",
            "overhead_seconds": str(OVERHEAD_SECONDS),
            "rate_source": source,
            "your_jobs": own_jobs,
            "price_per_second": str(p_sec.unit_price.normalize()),
            "price_per_example": str(p_ex.unit_price.normalize()),
            "note": "marginal list prices; included units of your plan may make it free",
        },
    )
