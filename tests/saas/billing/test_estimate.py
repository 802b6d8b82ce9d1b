"""The training estimate's per-example rate: net of the overhead, small jobs ignored, a true
median (found by the dashboard's first users: tiny jobs inflated it ~100×)."""

from __future__ import annotations

from decimal import Decimal

from saas.jobs.estimates import MIN_EXAMPLES_FOR_RATE, OVERHEAD_SECONDS, training_estimate
from saas.jobs.models import TrainingJob
from tests.conftest import small_text_rows, text_csv, upload


def _succeeded(org, dataset_id: str, wall: float, examples: int) -> None:
    TrainingJob.objects.for_tenant(org).create(
        organization=org,
        dataset_id=dataset_id,
        task="text-classification",
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 1},
        status="succeeded",
        usage={"wall_seconds": wall, "examples_processed": examples},
    )


def test_rate_is_the_median_net_of_overhead_ignoring_small_jobs(tenant):
    ds = upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    overhead = float(OVERHEAD_SECONDS)
    _succeeded(tenant.org, ds, wall=0.9, examples=20)  # tiny: would give 0.045 s/example
    _succeeded(tenant.org, ds, wall=overhead + 2.0, examples=10_000)  # 0.0002
    _succeeded(tenant.org, ds, wall=overhead + 4.0, examples=10_000)  # 0.0004
    est = training_estimate(
        organization=tenant.org,
        task="text-classification",
        base_model="text-embedding-bag",
        device="cpu",
        examples=1000,
        epochs=10,
    )
    assert est.basis["seconds_per_example"] == "0.0003"  # mean of the two middle values
    assert est.basis["rate_source"].startswith("median of 2 recent")
    assert est.seconds == OVERHEAD_SECONDS + Decimal("3.0")
    assert MIN_EXAMPLES_FOR_RATE > 20
