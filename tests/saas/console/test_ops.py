"""The console's at-a-glance and jobs pages against real PostgreSQL and Redis, and their actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from saas.jobs import operations
from saas.jobs import services as jobs
from saas.jobs.liveness import liveness_cache_clear, worker_beat
from saas.jobs.models import TrainingJob
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


QUEUES = ("training-cpu", "training-gpu", "maintenance")


def _clear(client) -> None:
    for q in QUEUES:
        client.delete(q, f"trainyard:workers:{q}")
    liveness_cache_clear()


@pytest.fixture
def broker():
    client = redis.Redis.from_url(settings.REDIS_URL)
    _clear(client)
    yield client
    _clear(client)


def _job(tenant) -> TrainingJob:
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    body = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    return TrainingJob.objects.for_tenant(tenant.org).get(pk=body["id"])


def _stale(job: TrainingJob) -> None:
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        heartbeat_at=timezone.now()
        - timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS + 5)
    )


def test_queue_depth_is_read_from_the_broker(broker, tenant):
    _job(tenant)  # queued in PostgreSQL (its ticket is sent once the test's transaction commits)
    broker.rpush("training-cpu", b"{}")
    broker.rpush("maintenance", b"{}", b"{}")
    depths = {q.name: q for q in operations.queue_depths()}
    assert set(depths) == {"training-cpu", "training-gpu", "maintenance"}
    assert depths["training-cpu"].depth >= 1
    assert depths["training-cpu"].queued_jobs == 1
    assert depths["maintenance"].depth == 2
    # Work waiting and nobody consuming: backed up.
    assert depths["training-cpu"].consumers == 0 and depths["training-cpu"].backed_up
    assert not depths["training-gpu"].backed_up


def test_a_worker_heartbeat_counts_as_a_consumer_and_shows_as_a_worker(broker, tenant):
    _job(tenant)
    worker_beat(hostname="celery@box-1", queues=["training-cpu"])
    depths = {q.name: q for q in operations.queue_depths()}
    assert depths["training-cpu"].consumers == 1
    assert not depths["training-cpu"].backed_up
    workers = operations.workers_online(timeout=0.2)
    assert [w.hostname for w in workers] == ["celery@box-1"]
    assert workers[0].queues == ["training-cpu"] and workers[0].last_heartbeat is not None


def test_stuck_jobs_follow_the_reapers_rule(tenant):
    fresh, stale = _job(tenant), _job(tenant)
    # Set directly: a start ticket claims the fairest queued job, not a named one.
    TrainingJob.objects.for_tenant(tenant.org).filter(pk__in=[fresh.pk, stale.pk]).update(
        status="running", heartbeat_at=timezone.now()
    )
    _stale(stale)
    assert [j.pk for j in operations.jobs_stuck()] == [stale.pk]


def test_job_stats_give_failure_rate_and_percentiles(tenant):
    now = timezone.now()
    a, b, c = _job(tenant), _job(tenant), _job(tenant)
    qs = TrainingJob.objects.for_tenant(tenant.org)
    for job, status, seconds in ((a, "succeeded", 10), (b, "succeeded", 30), (c, "failed", 50)):
        qs.filter(pk=job.pk).update(
            status=status, started_at=now - timedelta(seconds=seconds), finished_at=now
        )
    (row,) = operations.job_stats(hours=24)
    assert (row["finished"], row["failed"]) == (3, 1)
    assert row["failure_rate"] == pytest.approx(1 / 3)
    assert row["p50_seconds"] == pytest.approx(30, abs=0.5)
    assert row["p95_seconds"] == pytest.approx(48, abs=0.5)


def test_overview_renders_queues_workers_and_stuck_jobs(console, broker, tenant):
    job = _job(tenant)
    jobs.training_job_start(job_id=job.pk)
    _stale(job)
    resp = console.get("/console/")
    assert resp.status_code == 200
    html = resp.content.decode()
    for text in ("training-cpu", "training-gpu", "maintenance", "Stuck jobs (1)", job.pk):
        assert text in html
    assert "No worker answered" in html


def test_requeue_stuck_sends_takeover_tickets_and_audits_with_the_staff_user(
    console, operator, broker, tenant
):
    job = _job(tenant)
    jobs.training_job_start(job_id=job.pk)
    _stale(job)
    broker.delete("training-cpu")
    resp = console.post("/console/jobs/requeue-stuck")
    assert resp.status_code == 302 and resp["Location"] == "/console/"
    assert broker.llen("training-cpu") == 1  # the takeover ticket
    event = AuditEvent.objects.for_tenant(tenant.org).get(action="training_job.requeued")
    assert event.actor_user_id == operator.pk and event.target_id == job.pk


def test_requeue_redirect_never_follows_a_client_url(console, broker):
    resp = console.post("/console/jobs/requeue-stuck", {"next": "https://evil.example/"})
    assert resp["Location"] == "/console/"


def test_cancel_from_the_console_goes_through_the_service(console, operator, tenant):
    job = _job(tenant)
    resp = console.post(f"/console/jobs/{job.pk}/cancel")
    assert resp.status_code == 302
    assert TrainingJob.objects.for_tenant(tenant.org).get(pk=job.pk).status == "cancelled"
    event = AuditEvent.objects.for_tenant(tenant.org).get(action="training_job.cancelled")
    assert event.actor_user_id == operator.pk
    # Cancelling a finished job is a 409 page, nothing changes.
    again = console.post(f"/console/jobs/{job.pk}/cancel")
    assert again.status_code == 409
    assert console.post("/console/jobs/tj_missing/cancel").status_code == 404


def test_jobs_page_filters_and_refuses_unknown_status(console, tenant):
    job = _job(tenant)
    assert job.pk in console.get("/console/jobs").content.decode()
    assert job.pk not in console.get("/console/jobs?status=failed").content.decode()
    assert console.get("/console/jobs?status=bogus").status_code == 400


def test_predictions_per_minute_reads_the_ledger(console):
    from saas.metering.selectors import predictions_per_minute

    assert predictions_per_minute() == {"last_minute": 0.0, "average": 0.0}


def test_active_jobs_take_one_query_and_agree_with_the_api(broker, tenant, other_tenant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a1, a2 = _job(tenant), _job(tenant)
    b1 = _job(other_tenant)
    # tenant's first job runs: its second waits on the tenant's limit, globex's on capacity.
    TrainingJob.objects.for_tenant(tenant.org).filter(pk=a1.pk).update(status="running")
    with CaptureQueriesContext(connection) as few:
        rows = {j.pk: j for j in operations.jobs_active()}
    _job(other_tenant)
    with CaptureQueriesContext(connection) as more:
        operations.jobs_active()
    assert len(more) == len(few) <= 2  # not one per job
    for job, t in ((a2, tenant), (b1, other_tenant)):
        api = t.client.get(f"/v1/training-jobs/{job.pk}").json()
        assert (rows[job.pk].queue_position, rows[job.pk].wait_reason) == (
            api["queue_position"],
            api["wait_reason"],
        )
    assert rows[a2.pk].wait_reason == "tenant_limit" and rows[b1.pk].wait_reason == "capacity"
    assert rows[a1.pk].wait_reason is None
