"""The job state machine as the worker drives it: redelivery, takeover, limits, exactly once."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from saas.common.actor import Actor
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from tests.conftest import set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db
RESOURCES = {"wall_seconds": 1.5, "cpu_seconds": 2.25, "device": "cpu", "peak_rss_bytes": 1}


@pytest.fixture
def job(tenant):
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    job = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    return TrainingJob.objects.for_tenant(tenant.org).get(pk=job["id"])


def fake_result(tmp_path):
    model_dir = tmp_path / "saved_model"
    model_dir.mkdir()
    (model_dir / "saved_model.pb").write_bytes(b"not really a model")
    return SimpleNamespace(
        classes=["negative", "positive"],
        saved_model_dir=str(model_dir),
        metrics={"accuracy": 1.0, "macro_f1": 1.0},
        misclassified=[],
        epochs_completed=3,
        examples_processed=60,
    )


def reload(job):
    return TrainingJob.objects.for_tenant(job.organization_id).get(pk=job.pk)


def test_start_runs_once_then_ignores_redelivery(job):
    start = jobs.training_job_start(job_id=job.pk)
    assert start.attempt == 1 and start.dataset_key.endswith("data.csv")
    assert reload(job).status == "running"
    assert jobs.training_job_start(job_id=job.pk) is None  # fresh heartbeat: running elsewhere
    assert jobs.training_job_start(job_id="tj_missing") is None


def test_stale_heartbeat_is_taken_over_as_a_new_attempt(job, settings):
    first = jobs.training_job_start(job_id=job.pk)
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        heartbeat_at=timezone.now()
        - timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS + 1)
    )
    second = jobs.training_job_start(job_id=job.pk, takeover=True)  # the reaper's ticket
    assert second.attempt == first.attempt + 1
    # the superseded attempt is told to stop and cannot record anything
    assert jobs.JobMonitor(first).should_stop() is True
    assert jobs.JobMonitor(second).should_stop() is False


def test_complete_is_exactly_once(job, tmp_path):
    start = jobs.training_job_start(job_id=job.pk)
    assert (
        jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=RESOURCES)
        is True
    )
    (tmp_path / "again").mkdir()
    again = jobs.training_job_complete(
        start=start, result=fake_result(tmp_path / "again"), resources=RESOURCES
    )
    assert again is False
    assert TrainedModel.objects.for_tenant(job.organization_id).count() == 1
    assert UsageEvent.objects.for_tenant(job.organization_id).count() == 2
    j = reload(job)
    assert (
        j.status == "succeeded"
        and j.usage["billing_reason"] == "completed"
        and j.usage["wall_seconds"] == 1.5
    )
    assert jobs.training_job_start(job_id=job.pk) is None  # redelivered after success


def test_late_attempt_cannot_complete(job, tmp_path, settings):
    first = jobs.training_job_start(job_id=job.pk)
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    jobs.training_job_start(job_id=job.pk, takeover=True)
    assert (
        jobs.training_job_complete(start=first, result=fake_result(tmp_path), resources=RESOURCES)
        is False
    )
    assert TrainedModel.objects.for_tenant(job.organization_id).count() == 0


def test_tenant_limit_defers_the_start(job, settings):
    set_plan_limits("free", max_running_jobs=0)
    with pytest.raises(jobs.Deferred):
        jobs.training_job_start(job_id=job.pk)
    assert reload(job).status == "queued"


def test_cancel_requested_while_running_then_stopped(job):
    start = jobs.training_job_start(job_id=job.pk)
    monitor = jobs.JobMonitor(start)
    assert monitor.should_stop() is False
    jobs.training_job_cancel(job=reload(job), actor=Actor.system())
    assert monitor.should_stop() is True
    jobs.training_job_stopped(start=start, resources=RESOURCES, examples=12)
    j = reload(job)
    assert j.status == "cancelled" and j.usage["billing_reason"] == "cancelled_by_user"
    assert (
        UsageEvent.objects.for_tenant(job.organization_id).get(meter="training_examples").quantity
        == 12
    )


def test_platform_failure_is_not_billed(job):
    start = jobs.training_job_start(job_id=job.pk)
    jobs.training_job_fail(start=start, code="platform", message="boom")
    j = reload(job)
    assert j.status == "failed" and j.error == {"code": "platform", "message": "boom"}
    assert j.usage["billing_reason"] == "failed_platform"
    assert UsageEvent.objects.for_tenant(job.organization_id).count() == 0


def test_epochs_recorded_in_timeline(job):
    start = jobs.training_job_start(job_id=job.pk)
    jobs.JobMonitor(start).on_epoch(
        1, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7}
    )
    assert reload(job).epoch == 1


def test_reaper_reenqueues_only_stale_running_jobs(job, settings):
    jobs.training_job_start(job_id=job.pk)
    assert jobs.training_jobs_reap_stuck() == []
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert jobs.training_jobs_reap_stuck() == [job.pk]


def test_unscoped_query_raises():
    from saas.tenancy.models import UnscopedQueryError

    with pytest.raises(UnscopedQueryError):
        list(TrainingJob.objects.all())
    with pytest.raises(UnscopedQueryError):
        TrainingJob.objects.for_tenant("")


def test_usage_endpoint_sums_by_meter_and_day(tenant, job, tmp_path):
    start = jobs.training_job_start(job_id=job.pk)
    jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=RESOURCES)
    rows = tenant.client.get("/v1/usage").json()["data"]
    by_meter = {r["meter"]: r for r in rows}
    assert by_meter["training_compute_seconds"]["quantity"] == "1.5"
    assert by_meter["training_examples"]["quantity"] == "60"
    assert by_meter["training_examples"]["unit"] == "example"
    assert by_meter["training_examples"]["date"] == timezone.now().date().isoformat()


def test_input_failure_bills_the_compute_used(job):
    start = jobs.training_job_start(job_id=job.pk)
    jobs.training_job_fail(
        start=start, code="input", message="a class vanished", resources=RESOURCES
    )
    j = reload(job)
    assert j.status == "failed" and j.usage["billing_reason"] == "failed_input"
    meters = set(UsageEvent.objects.for_tenant(job.organization_id).values_list("meter", flat=True))
    assert meters == {"training_compute_seconds", "training_examples"}
