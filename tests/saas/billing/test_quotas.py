"""Hard quotas are hard: a job's estimate is reserved at submission against every metered
quantity and the spend caps (402 naming the meter when it does not fit), released when the job
ends, and two submissions racing for the last of a quota cannot both win; GPU time is billed
on its own meter, above cost."""

from __future__ import annotations

import threading
from decimal import Decimal as D

import pytest
from django.db import connections
from django.utils import timezone

from saas.billing import services as billing
from saas.billing.models import BillingAccount, Plan, PlanPrice, QuotaReservation, RateCard
from saas.billing.seed import RATE_CARD, seed
from saas.common.actor import Actor
from saas.datasets.models import Dataset
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from saas.metering.services import usage_record
from tests.conftest import make_tenant, small_text_rows, text_csv, upload

RESOURCES = {"wall_seconds": 1.5, "cpu_seconds": 2.25, "device": "cpu", "peak_rss_bytes": 1}
# 24 rows → 19 training examples × 10 epochs; 3.0 s at the default rate (overhead included).
ESTIMATE_SECONDS = D("3.0")
ESTIMATE_EXAMPLES = D(190)


def set_included(plan: str, meter: str, units: str) -> None:
    assert PlanPrice.objects.filter(plan__code=plan, meter=meter).update(included_units=D(units))


def set_price(plan: str, meter: str, price: str) -> None:
    assert PlanPrice.objects.filter(plan__code=plan, meter=meter).update(unit_price=D(price))


def used(org, meter: str, quantity: str, source: str = "earlier") -> None:
    """Usage already in this month's ledger (another job of the tenant that finished)."""
    usage_record(
        organization_id=org.pk,
        meter=meter,
        quantity=D(quantity),
        occurred_at=timezone.now(),
        source_type="training_job",
        source_id=f"tj_{source}",
    )


def submit(t, ds_id: str, **extra):
    return t.client.post("/v1/training-jobs", {"dataset": ds_id, **extra}, format="json")


def reservations(org):
    return QuotaReservation.objects.for_tenant(org)


@pytest.fixture
def ds(tenant) -> str:
    return upload(tenant.client, text_csv(small_text_rows())).json()["id"]


def assert_problem(r, meter: str) -> dict:
    assert r.status_code == 402, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 402 and body["meter"] == meter, body
    assert meter in body["detail"]
    return body


# --- admission -----------------------------------------------------------------------------


def test_a_dry_run_that_does_not_fit_the_compute_quota_is_refused(tenant, ds):
    set_included("free", "training_compute_seconds", "2.9")
    r = submit(tenant, ds, dry_run=True)
    body = assert_problem(r, "training_compute_seconds")
    assert body["requested"] == "3" and body["remaining"] == "2.9" and body["limit"] == "2.9"
    r = submit(tenant, ds)
    assert_problem(r, "training_compute_seconds")
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 0
    assert reservations(tenant.org).count() == 0


def test_a_dry_run_that_fits_holds_nothing(tenant, ds):
    r = submit(tenant, ds, dry_run=True)
    assert r.status_code == 200 and r.json()["estimated_seconds"] == float(ESTIMATE_SECONDS)
    assert reservations(tenant.org).count() == 0


def test_the_training_examples_quota_is_checked(tenant, ds):
    set_included("free", "training_examples", "189")  # the job needs 190 (19 × 10 epochs)
    assert_problem(submit(tenant, ds, dry_run=True), "training_examples")
    assert_problem(submit(tenant, ds), "training_examples")
    assert submit(tenant, ds, hyperparameters={"epochs": 9}).status_code == 201  # 171 fit


def test_usage_already_billed_counts(tenant, ds):
    set_included("free", "training_compute_seconds", "10")
    used(tenant.org, "training_compute_seconds", "7.5")
    body = assert_problem(submit(tenant, ds), "training_compute_seconds")
    assert body["used"] == "7.5" and body["remaining"] == "2.5"


def test_a_submission_reserves_its_estimate_until_the_job_ends(tenant, ds):
    set_included("free", "training_compute_seconds", "5")
    first = submit(tenant, ds)
    assert first.status_code == 201, first.content
    [held] = reservations(tenant.org)
    assert held.source_id == first.json()["id"] and held.released_at is None
    assert held.quantities == {
        "training_compute_seconds": str(ESTIMATE_SECONDS.normalize()),
        "training_examples": "190",
    }
    # 3 s are held, 2 remain: the second job (3 s) does not fit.
    body = assert_problem(submit(tenant, ds), "training_compute_seconds")
    assert body["reserved"] == "3" and body["remaining"] == "2"
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 1

    tenant.client.post(f"/v1/training-jobs/{first.json()['id']}/cancel")  # cancelled queued
    assert reservations(tenant.org).get().released_at is not None
    assert submit(tenant, ds).status_code == 201


def _job(tenant, ds) -> TrainingJob:
    r = submit(tenant, ds)
    assert r.status_code == 201, r.content
    return TrainingJob.objects.for_tenant(tenant.org).get(pk=r.json()["id"])


def _released(job) -> bool:
    return reservations(job.organization_id).get(source_id=job.pk).released_at is not None


def test_every_terminal_status_releases_the_reservation(tenant, ds, tmp_path):
    from tests.saas.jobs.test_state_machine import fake_result

    done = _job(tenant, ds)
    start = jobs.training_job_start(job_id=done.pk)
    jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=RESOURCES)
    assert _released(done)

    crashed = _job(tenant, ds)
    start = jobs.training_job_start(job_id=crashed.pk)
    jobs.training_job_fail(start=start, code="platform", message="boom")
    assert _released(crashed)

    bad_input = _job(tenant, ds)
    start = jobs.training_job_start(job_id=bad_input.pk)
    jobs.training_job_fail(start=start, code="input", message="bad", resources=RESOURCES)
    assert _released(bad_input)

    cancelled = _job(tenant, ds)
    start = jobs.training_job_start(job_id=cancelled.pk)
    jobs.training_job_cancel(job=cancelled, actor=Actor.system())
    jobs.training_job_stopped(start=start, resources=RESOURCES, examples=12)
    assert _released(cancelled)

    # Refused at start (the quota was used up by others meanwhile): failed, released.
    refused = _job(tenant, ds)
    used(tenant.org, "training_compute_seconds", "3600", source="big")
    assert jobs.training_job_start(job_id=refused.pk) is None
    assert TrainingJob.objects.for_tenant(tenant.org).get(pk=refused.pk).status == "failed"
    assert _released(refused)
    assert reservations(tenant.org).filter(released_at__isnull=True).count() == 0


def test_spend_cap_counts_the_estimate_and_other_reservations(db):
    t = make_tenant("capped")
    billing.billing_plan_change(organization=t.org, plan_code="pro", actor=Actor.system())
    ds = upload(t.client, text_csv(small_text_rows())).json()["id"]
    set_price("pro", "training_gpu_seconds", "1.00")  # so a 3 s estimate costs dollars
    BillingAccount.objects.for_tenant(t.org).update(monthly_spend_cap=D("54.00"))  # fee 49
    first = submit(t, ds, device="gpu")
    assert first.status_code == 201, first.content
    held = reservations(t.org).get()
    assert held.amount > D("2") and "training_gpu_seconds" in held.quantities
    second = submit(t, ds, device="gpu")
    assert second.status_code == 402, second.content
    body = second.json()
    assert body["limit"] == "spend_cap" and D(body["reserved"]) == held.amount
    assert TrainingJob.objects.for_tenant(t.org).count() == 1


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_submissions_racing_for_the_last_of_a_quota_one_wins():
    if not Plan.objects.exists():  # a transactional test may start after a flush
        seed(Plan, PlanPrice, RateCard)
    t = make_tenant("racer")
    ds = upload(t.client, text_csv(small_text_rows())).json()["id"]
    set_included("free", "training_compute_seconds", "5")  # room for one 3 s job, not two
    dataset = Dataset.objects.for_tenant(t.org).get(pk=ds)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def race() -> None:
        try:
            barrier.wait(timeout=10)
            jobs.training_job_create(organization=t.org, dataset=dataset, actor=Actor.system())
            outcomes.append("created")
        except billing.PaymentRequired as refused:
            outcomes.append(refused.extra["meter"])
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(outcomes) == ["created", "training_compute_seconds"]
    assert TrainingJob.objects.for_tenant(t.org).count() == 1
    assert reservations(t.org).filter(released_at__isnull=True).count() == 1


# --- GPU -----------------------------------------------------------------------------------


def test_the_free_plan_refuses_gpu_jobs(tenant, ds):
    assert_problem(submit(tenant, ds, device="gpu"), "training_gpu_seconds")
    assert_problem(submit(tenant, ds, device="gpu", dry_run=True), "training_gpu_seconds")


def test_a_gpu_job_is_billed_on_the_gpu_meter_above_cost(db, tmp_path):
    from tests.saas.jobs.test_state_machine import fake_result

    t = make_tenant("gpuco")
    billing.billing_plan_change(organization=t.org, plan_code="pro", actor=Actor.system())
    ds = upload(t.client, text_csv(small_text_rows())).json()["id"]
    job = _job(t, ds)
    start = jobs.training_job_start(job_id=job.pk)
    gpu = {**RESOURCES, "wall_seconds": 100.0, "device": "gpu"}
    jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=gpu)
    ev = UsageEvent.objects.for_tenant(t.org).get(source_id=job.pk, meter="training_gpu_seconds")
    assert ev.quantity == 100 and ev.compute_cost == 100 * RATE_CARD["gpu_second_cost"]
    assert not UsageEvent.objects.for_tenant(t.org).filter(meter="training_compute_seconds")
    usage = TrainingJob.objects.for_tenant(t.org).get(pk=job.pk).usage
    line = usage["charge_lines"]["training_gpu_seconds"]
    assert line == {"billable": "100", "unit_price": "0.0012", "amount": "0.12"}
    assert D(usage["charge"]) >= ev.compute_cost  # sold at or above what it cost
