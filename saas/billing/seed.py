"""The default plans (with their limits) and the first rate card: seeded by migration 0002
(the limits by 0004), and restored by :func:`saas.billing.services.accounts.billing_account_ensure`
if a table was emptied (e.g. by a test database flush)."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

START = datetime.date(2026, 1, 1)

PLANS = {
    # code: (name, monthly fee, hard limits, contract based, {meter: (included units, unit price)})
    "free": (
        "Free",
        D("0"),
        True,
        False,
        {
            "training_compute_seconds": (D("3600"), D("0")),
            # No GPU time on the free plan: its hard quota of 0 refuses GPU jobs (402).
            "training_gpu_seconds": (D("0"), D("0")),
            "training_examples": (D("1000000"), D("0")),
            "predictions": (D("10000"), D("0")),
            "batch_prediction_rows": (D("10000"), D("0")),
            "storage_gb_hours": (D("720"), D("0")),
        },
    ),
    "pro": (
        "Pro",
        D("49.00"),
        False,
        False,
        {
            "training_compute_seconds": (D("36000"), D("0.0005")),
            # 1.5× the operator's GPU cost, nothing included (the fee does not cover GPUs).
            "training_gpu_seconds": (D("0"), D("0.0012")),
            "training_examples": (D("10000000"), D("0.000001")),
            "predictions": (D("100000"), D("0.0005")),
            "batch_prediction_rows": (D("100000"), D("0.0002")),
            "storage_gb_hours": (D("7200"), D("0.0002")),
        },
    ),
    "enterprise": (
        "Enterprise",
        D("0"),
        False,
        True,
        {
            "training_compute_seconds": (D("0"), D("0.0004")),
            "training_gpu_seconds": (D("0"), D("0.0010")),
            "training_examples": (D("0"), D("0.0000008")),
            "predictions": (D("0"), D("0.0004")),
            "batch_prediction_rows": (D("0"), D("0.00015")),
            "storage_gb_hours": (D("0"), D("0.00015")),
        },
    ),
}
# code: the plan's limits (prediction inputs per window per key and per organisation (migration
# 0006); requests per rate-limit window per key or user and per organisation;
# training jobs running at once, and queued or running; classes per uploaded dataset (migration
# 0007)). Seeded by migration 0004, which moved them here from the former TRAINYARD_PLAN_LIMITS
# setting with the same values.
LIMITS = {
    "free": {
        "predictions_per_key": 600,
        "predictions_per_organization": 1200,
        "requests_per_key": 120,
        "requests_per_organization": 300,
        "max_running_jobs": 1,
        "max_active_jobs": 10,
        "max_classes": 100,
    },
    "pro": {
        "predictions_per_key": 60000,
        "predictions_per_organization": 120000,
        "requests_per_key": 600,
        "requests_per_organization": 2000,
        "max_running_jobs": 2,
        "max_active_jobs": 50,
        "max_classes": 1000,
    },
    "enterprise": {
        "predictions_per_key": 600000,
        "predictions_per_organization": 2000000,
        "requests_per_key": 3000,
        "requests_per_organization": 10000,
        "max_running_jobs": 8,
        "max_active_jobs": 500,
        # A contract's own figure is set on its plan in the admin; this is the starting point.
        "max_classes": 5000,
    },
}
# $0.072 per CPU-hour and $2.88 per GPU-hour: typical cloud on-demand prices.
# Storage: $0.023 per GB-month (S3 Standard) over 730 hours.
RATE_CARD = {
    "cpu_second_cost": D("0.00002"),
    "gpu_second_cost": D("0.0008"),
    "storage_gb_hour_cost": D("0.0000315"),
}
# Which rate-card cost each meter with a per-unit cost is sold against (the margin rule
# below). Predictions have no per-unit cost: each costs the CPU seconds it used (metered by
# the data plane), so they are checked in the console's unit economics instead.
METER_COSTS = {
    "training_compute_seconds": "cpu_second_cost",
    "training_gpu_seconds": "gpu_second_cost",
    "storage_gb_hours": "storage_gb_hour_cost",
}
# The margin rule (tests/saas/billing/test_rate_card.py checks every seeded plan against it):
# a metered unit is never sold below its cost, and a plan's included compute and storage at
# full use cost no more than its monthly fee, or, for a plan without a fee, this much a month
# (the free plan's 3,600 CPU seconds cost $0.072 and its 720 GB-hours $0.023).
FREE_TIER_MONTHLY_COST_CAP = D("0.10")


def _has_limits(Plan) -> bool:
    """True if ``Plan`` (maybe a historical model) has the limit columns (migration 0004 on)."""
    return any(f.name == "max_running_jobs" for f in Plan._meta.get_fields())


def seed(Plan, PlanPrice, RateCard) -> None:
    """Create what is missing (never overwrites an operator's edits). Takes the model classes
    so the migrations can pass their historical models (0002's Plan has no limits yet)."""
    with_limits = _has_limits(Plan)
    columns = {f.name for f in Plan._meta.get_fields()}  # 0006 added the prediction limits
    for code, (name, fee, hard, contract, prices) in PLANS.items():
        plan, _ = Plan.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "monthly_fee": fee,
                "hard_limits": hard,
                "contract_based": contract,
                **({k: v for k, v in LIMITS[code].items() if k in columns} if with_limits else {}),
            },
        )
        for meter, (included, price) in prices.items():
            PlanPrice.objects.get_or_create(
                plan=plan,
                meter=meter,
                effective_from=START,
                defaults={"included_units": included, "unit_price": price},
            )
    card_columns = {f.name for f in RateCard._meta.get_fields()}  # 0009 added storage
    RateCard.objects.get_or_create(
        effective_from=START, defaults={k: v for k, v in RATE_CARD.items() if k in card_columns}
    )
