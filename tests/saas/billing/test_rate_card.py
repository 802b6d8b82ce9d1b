"""No meter sells below cost: over the seeded plans and rate card (saas/billing/seed.py), every
compute meter's unit price is at least what the unit costs the operator, and a plan's included
compute at full use is covered by its fee (the free plan's by a small fixed budget, with no GPU
time at all). Found when GPU seconds sold at $0.0005 against a $0.0008 cost."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from saas.billing.models import Plan, PlanPrice, RateCard
from saas.billing.seed import FREE_TIER_MONTHLY_COST_CAP, METER_COSTS, PLANS, RATE_CARD, seed
from saas.metering.models import Meter


def _margins(plans: dict, card: dict) -> list[tuple[str, str, D]]:
    """``(plan, meter, unit price − unit cost)`` for every compute meter of every plan."""
    out = []
    for code, (_n, _fee, _hard, _contract, prices) in plans.items():
        for meter, cost_field in METER_COSTS.items():
            _included, price = prices[meter]
            out.append((code, meter, price - card[cost_field]))
    return out


def test_every_compute_meter_is_priced_on_every_plan():
    assert set(METER_COSTS) == {
        Meter.TRAINING_COMPUTE_SECONDS,
        Meter.TRAINING_GPU_SECONDS,
        Meter.STORAGE_GB_HOURS,
    }
    for code, (*_rest, prices) in PLANS.items():
        assert set(prices) == set(Meter.values), code


def test_no_metered_unit_sells_below_cost():
    for code, meter, margin in _margins(PLANS, RATE_CARD):
        if PLANS[code][2]:
            continue  # a hard-limit plan sells no unit beyond its quota: refused (402)
        assert margin >= 0, (code, meter, margin)


def test_included_compute_is_covered_by_the_fee():
    for code, (_n, fee, _hard, _contract, prices) in PLANS.items():
        cost = sum(prices[meter][0] * RATE_CARD[field] for meter, field in METER_COSTS.items())
        budget = fee if fee > 0 else FREE_TIER_MONTHLY_COST_CAP
        assert cost <= budget, (code, cost, budget)


def test_the_free_plan_includes_no_gpu_time():
    _n, _fee, hard, _contract, prices = PLANS["free"]
    assert hard and prices[Meter.TRAINING_GPU_SECONDS][0] == 0


def test_the_margin_rule_catches_the_old_gpu_price():
    # The rate card before the GPU meter: pro sold every compute second at $0.0005.
    old = {code: (*rest, {**prices}) for code, (*rest, prices) in PLANS.items()}
    old["pro"][4]["training_gpu_seconds"] = (D("0"), D("0.0005"))
    assert ("pro", "training_gpu_seconds", D("-0.0003")) in _margins(old, RATE_CARD)


@pytest.mark.django_db
def test_the_seeded_database_rows_obey_the_same_rule():
    seed(Plan, PlanPrice, RateCard)  # what the migrations seed (a no-op when present)
    card = RateCard.objects.order_by("-effective_from").first()
    for plan in Plan.objects.all():
        for meter, field in METER_COSTS.items():
            price = PlanPrice.objects.filter(plan=plan, meter=meter).latest("effective_from")
            if not plan.hard_limits:
                assert price.unit_price >= getattr(card, field), (plan.code, meter)
            elif meter == Meter.TRAINING_GPU_SECONDS:
                assert price.included_units == 0, plan.code
