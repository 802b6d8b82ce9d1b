"""The training estimate: job history (how fast recent jobs ran) priced by billing.

It lives in jobs because it reads ``TrainingJob`` rows; billing prices it and never imports
jobs (jobs and inference call billing, not the other way round).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from saas.billing import pricing
from saas.billing.selectors import billing_account_get
from saas.contract.tasks import IMAGE, TEXT
from saas.metering.models import Meter
from saas.tenancy.models import Organization

from .models import TrainingJob

# Seconds per training example per epoch on one CPU core class machine, measured with
# bench/train_defaults.py (text 5.5 s for 2400 × 10; cnn-small 17 s for 400 × 30). Used until the
# platform has measured jobs of that kind.
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


@dataclass(frozen=True)
class Estimate:
    """A training job's estimate: ``seconds`` of compute, a price range (Decimals in
    ``currency``) and the ``basis`` it was computed from (strings, for display)."""

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
        middle = len(rates) // 2
        median = rates[middle] if len(rates) % 2 else (rates[middle - 1] + rates[middle]) / 2
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
