"""The training estimate's per-example rate: net of the overhead, small jobs ignored, the
tenant's own history shrunk towards a platform prior that no single tenant can move (found by
the dashboard's first users: tiny jobs inflated it ~100×; then a hostile tenant moved another's
estimate from 3.0 s to 59.6 s with three tiny-batch jobs)."""

from __future__ import annotations

import json
from decimal import Decimal

from django.utils import timezone

from saas.jobs.estimates import (
    DEFAULT_SECONDS_PER_EXAMPLE,
    JOBS_PER_TENANT,
    MIN_EXAMPLES_FOR_RATE,
    OVERHEAD_SECONDS,
    PRIOR_CLAMP,
    PRIOR_WEIGHT,
    platform_prior,
    training_estimate,
)
from saas.jobs.models import TrainingJob
from tests.conftest import make_tenant, small_text_rows, text_csv, upload

TEXT = "text-classification"
BASE = "text-embedding-bag"
DEFAULT = DEFAULT_SECONDS_PER_EXAMPLE[(TEXT, "cpu")]


def _succeeded(org, dataset_id: str, wall: float, examples: int) -> None:
    TrainingJob.objects.for_tenant(org).create(
        organization=org,
        dataset_id=dataset_id,
        task=TEXT,
        base_model=BASE,
        hyperparameters={"epochs": 1},
        status="succeeded",
        finished_at=timezone.now(),
        usage={"wall_seconds": wall, "examples_processed": examples},
    )


def _with_rate(tenant, rate: str, jobs: int = 3) -> None:
    """``jobs`` succeeded jobs of ``tenant`` at ``rate`` s/example (10,000 examples each)."""
    ds = upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    for _ in range(jobs):
        _succeeded(
            tenant.org, ds, wall=float(OVERHEAD_SECONDS + Decimal(rate) * 10_000), examples=10_000
        )


def _estimate(org):
    return training_estimate(
        organization=org, task=TEXT, base_model=BASE, device="cpu", examples=1000, epochs=10
    )


def test_own_rate_is_the_median_net_of_overhead_shrunk_to_the_prior(tenant):
    ds = upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    overhead = float(OVERHEAD_SECONDS)
    _succeeded(tenant.org, ds, wall=0.9, examples=20)  # tiny: would give 0.045 s/example
    _succeeded(tenant.org, ds, wall=overhead + 2.0, examples=10_000)  # 0.0002
    _succeeded(tenant.org, ds, wall=overhead + 4.0, examples=10_000)  # 0.0004
    est = _estimate(tenant.org)
    # Own median 0.0003 (two jobs), prior = the default (one tenant is no platform), weighted
    # 2 : PRIOR_WEIGHT in log space.
    own, n = Decimal("0.0003"), 2
    expected = ((n * own.ln() + PRIOR_WEIGHT * DEFAULT.ln()) / (n + PRIOR_WEIGHT)).exp()
    assert est.basis["seconds_per_example"] == f"{Decimal(format(expected, '.3g')).normalize():f}"
    assert est.basis["rate_source"] == f"platform prior and 2 of your {BASE} jobs on cpu"
    assert est.basis["your_jobs"] == 2
    rate = Decimal(est.basis["seconds_per_example"])
    assert est.seconds == (OVERHEAD_SECONDS + 10_000 * rate).quantize(Decimal("0.1"))
    assert est.quantities == {"training_compute_seconds": est.seconds, "training_examples": 10_000}
    assert MIN_EXAMPLES_FOR_RATE > 20


def test_many_own_jobs_outweigh_the_prior(tenant):
    _with_rate(tenant, "0.001", jobs=JOBS_PER_TENANT + 5)  # only the last 20 count
    est = _estimate(tenant.org)
    assert est.basis["your_jobs"] == JOBS_PER_TENANT
    rate = Decimal(est.basis["seconds_per_example"])
    assert Decimal("0.0008") < rate < Decimal("0.001")  # mostly its own 4× slower rate


def test_a_new_tenant_gets_the_prior_and_learns_nothing_of_other_tenants(db):
    others = [make_tenant(f"honest{i}") for i in range(3)]
    for t, rate in zip(others, ("0.000301", "0.000312", "0.000333"), strict=True):
        _with_rate(t, rate)
    newcomer = make_tenant("newcomer")
    est = _estimate(newcomer.org)
    assert est.basis["your_jobs"] == 0
    assert est.basis["rate_source"] == f"platform prior for {BASE} on cpu (no jobs of yours yet)"
    # The prior is rounded to 2 digits: no single tenant's own figure (3 digits) shows.
    assert est.basis["seconds_per_example"] == "0.00031"
    text = json.dumps(est.basis)
    for t in others:
        assert t.org.pk not in text and t.org.slug not in text
    for figure in ("0.000301", "0.000312", "0.000333", "recent", "median"):
        assert figure not in text


def test_a_hostile_tenant_moves_another_tenants_estimate_by_a_bounded_factor(db):
    for i, rate in enumerate(("0.00028", "0.0003", "0.00032")):
        _with_rate(make_tenant(f"honest{i}"), rate)
    victim = make_tenant("victim")
    _with_rate(victim, "0.0003", jobs=2)
    newcomer = make_tenant("newcomer")
    before = {t: _estimate(t.org).seconds for t in (victim, newcomer)}

    # Twenty tiny-batch jobs, each 40× slower per example than anyone else's.
    hostile = make_tenant("hostile")
    _with_rate(hostile, "0.012", jobs=JOBS_PER_TENANT)
    after = {t: _estimate(t.org).seconds for t in (victim, newcomer)}
    for t in (victim, newcomer):
        assert max(after[t] / before[t], before[t] / after[t]) <= Decimal("1.1"), t.org.slug

    # Even a majority of colluding tenants cannot move the prior past the clamp.
    for i in range(4):
        _with_rate(make_tenant(f"hostile{i}"), "0.012", jobs=3)
    prior = platform_prior(task=TEXT, base_model=BASE, device="cpu")
    assert prior == DEFAULT * PRIOR_CLAMP
    assert _estimate(newcomer.org).seconds <= OVERHEAD_SECONDS + 10_000 * DEFAULT * PRIOR_CLAMP


def test_one_or_two_tenants_do_not_make_a_prior(db):
    _with_rate(make_tenant("alone"), "0.012")
    _with_rate(make_tenant("second"), "0.012")
    assert platform_prior(task=TEXT, base_model=BASE, device="cpu") == DEFAULT
