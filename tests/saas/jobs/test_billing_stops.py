"""Jobs that stop for billing reasons are billed for what they used: the training time limit
(once ``failed_platform`` and free, so a free tenant could loop 5.7-hour jobs), and a quota or
spend cap running out mid-training (checked every epoch)."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest
from django.utils import timezone

from saas.billing import services as billing
from saas.billing.models import BillingAccount, PlanPrice, QuotaReservation
from saas.common.actor import Actor
from saas.jobs import services as jobs
from saas.jobs.models import JobEvent, TrainingJob
from saas.metering.models import UsageEvent
from saas.metering.services import usage_record
from tests.conftest import make_tenant, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db
RESOURCES = {"wall_seconds": 40.0, "cpu_seconds": 38.5, "device": "cpu", "peak_rss_bytes": 1}
LOGS = {"loss": 0.5, "accuracy": 0.75}


def _submit(t, **extra) -> TrainingJob:
    ds = upload(t.client, text_csv(small_text_rows())).json()["id"]
    r = t.client.post("/v1/training-jobs", {"dataset": ds, **extra}, format="json")
    assert r.status_code == 201, r.content
    return TrainingJob.objects.for_tenant(t.org).get(pk=r.json()["id"])


def _reload(job) -> TrainingJob:
    return TrainingJob.objects.for_tenant(job.organization_id).get(pk=job.pk)


def _events(job) -> dict[str, UsageEvent]:
    return {e.meter: e for e in UsageEvent.objects.for_tenant(job.organization_id)}


def test_a_time_limit_stop_bills_the_compute_used(tenant):
    job = _submit(tenant)
    start = jobs.training_job_start(job_id=job.pk)
    monitor = jobs.JobMonitor(start)
    monitor.on_epoch(1, LOGS)
    monitor.on_epoch(2, LOGS)
    jobs.training_job_time_limited(start=start, resources=RESOURCES)
    j = _reload(job)
    assert j.status == "failed" and j.error["code"] == "time_limit"
    assert j.usage["billing_reason"] == "time_limit" and j.usage["billable_seconds"] == 40.0
    assert "training_compute_seconds" in j.usage["charge_lines"]
    events = _events(job)
    assert events["training_compute_seconds"].quantity == 40
    assert events["training_compute_seconds"].dimensions["billing_reason"] == "time_limit"
    # Two epochs of 20 training examples (12 a class, 2 of each held out by the grouped split).
    assert events["training_examples"].quantity == 2 * 20
    assert events["training_examples"].dimensions["billing_reason"] == "time_limit"
    assert QuotaReservation.objects.for_tenant(tenant.org).get().released_at is not None
    failed = JobEvent.objects.for_tenant(tenant.org).filter(job=job, type="failed").get()
    assert failed.data["code"] == "time_limit"


def test_a_time_limit_before_measuring_began_bills_nothing_but_ends_the_job(tenant):
    job = _submit(tenant)
    start = jobs.training_job_start(job_id=job.pk)
    jobs.training_job_time_limited(start=start, resources={})
    j = _reload(job)
    assert j.status == "failed" and j.error["code"] == "time_limit"
    assert _events(job)["training_compute_seconds"].quantity == 0


def test_training_stops_when_the_compute_quota_runs_out(tenant):
    PlanPrice.objects.filter(plan__code="free", meter="training_compute_seconds").update(
        included_units=D("5")
    )
    job = _submit(tenant)  # 3 s reserved, 2 s left
    start = jobs.training_job_start(job_id=job.pk)
    monitor = jobs.JobMonitor(start)
    time.sleep(0.05)
    monitor.on_epoch(1, LOGS)
    assert monitor.exhausted is None and monitor.should_stop() is False  # its own reservation
    # Meanwhile another of the tenant's jobs finished and used all but 0.01 s of the quota.
    usage_record(
        organization_id=tenant.org.pk,
        meter="training_compute_seconds",
        quantity=D("4.99"),
        occurred_at=timezone.now(),
        source_type="training_job",
        source_id="tj_other",
    )
    monitor.on_epoch(2, LOGS)
    assert monitor.exhausted is not None and "training_compute_seconds" in monitor.exhausted
    assert monitor.should_stop() is True
    jobs.training_job_stopped(
        start=start, resources=RESOURCES, examples=38, exhausted=monitor.exhausted
    )
    j = _reload(job)
    assert j.status == "failed" and j.error["code"] == "quota_exhausted"
    assert j.usage["billing_reason"] == "quota_exhausted"
    ev = UsageEvent.objects.for_tenant(tenant.org).get(
        source_id=job.pk, meter="training_compute_seconds"
    )
    assert ev.quantity == 40 and ev.dimensions["billing_reason"] == "quota_exhausted"
    assert QuotaReservation.objects.for_tenant(tenant.org).get().released_at is not None


def test_training_stops_when_the_spend_cap_is_reached(db):
    t = make_tenant("capped")
    billing.billing_plan_change(organization=t.org, plan_code="pro", actor=Actor.system())
    PlanPrice.objects.filter(plan__code="pro", meter="training_gpu_seconds").update(
        unit_price=D("1.00")
    )
    BillingAccount.objects.for_tenant(t.org).update(monthly_spend_cap=D("60.00"))
    job = _submit(t, device="gpu")
    start = jobs.training_job_start(job_id=job.pk)
    monitor = jobs.JobMonitor(start)
    time.sleep(0.05)
    monitor.on_epoch(1, LOGS)
    assert monitor.exhausted is None
    # The operator lowers the cap to a cent above the fee: the job's GPU time so far is more.
    BillingAccount.objects.for_tenant(t.org).update(monthly_spend_cap=D("49.01"))
    time.sleep(0.05)
    monitor.on_epoch(2, LOGS)
    assert monitor.exhausted is not None and "spend cap" in monitor.exhausted
    assert monitor.should_stop() is True


def test_a_users_cancel_wins_over_an_exhausted_quota(tenant):
    job = _submit(tenant)
    start = jobs.training_job_start(job_id=job.pk)
    jobs.training_job_cancel(job=job, actor=Actor.system())
    jobs.training_job_stopped(start=start, resources=RESOURCES, examples=0, exhausted="quota")
    j = _reload(job)
    assert j.status == "cancelled" and j.usage["billing_reason"] == "cancelled_by_user"
