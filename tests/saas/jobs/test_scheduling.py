"""Fair scheduling across tenants, deferral backoff, the attempts cap and the heartbeat thread.

Every test drives the real services against PostgreSQL: a "ticket" is what a ``train`` Celery
message hands to ``training_job_start`` (its ``job_id``), processed here in FIFO order the way
one worker slot consumes its queue.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from saas.billing.services import billing_plan_change
from saas.common.actor import Actor
from saas.datasets.models import Dataset
from saas.jobs import services as jobs
from saas.jobs.models import JobEvent, TrainingJob
from saas.metering.models import UsageEvent
from tests.conftest import make_tenant, set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def dataset_of(tenant) -> Dataset:
    body = upload(tenant.client, text_csv(small_text_rows())).json()
    return Dataset.objects.for_tenant(tenant.org).get(pk=body["id"])


def submit(tenant, dataset, n: int = 1, device: str = "cpu") -> list[str]:
    """``n`` jobs through the real create service; returns their ids (= their tickets)."""
    return [
        jobs.training_job_create(
            organization=tenant.org, dataset=dataset, actor=Actor.system(), device=device
        ).pk
        for _ in range(n)
    ]


def row(job_id: str) -> TrainingJob:
    return TrainingJob.objects.unscoped_all_tenants().get(pk=job_id)


def make_stale(job_id: str) -> None:
    TrainingJob.objects.unscoped_all_tenants().filter(pk=job_id).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )


def test_one_tenants_backlog_delays_anothers_job_by_at_most_one_job(tenant, other_tenant):
    set_plan_limits(max_active_jobs=100)
    hog = submit(tenant, dataset_of(tenant), 50)
    tickets = list(hog)  # the device queue, FIFO, as Redis holds it
    order: list[str] = []  # jobs in the order they started on the single slot

    first = jobs.training_job_start(job_id=tickets.pop(0))
    order.append(first.job_id)
    # While the hog's first job runs, the other tenant submits one job: its ticket is last.
    single = submit(other_tenant, dataset_of(other_tenant))[0]
    tickets.append(single)
    jobs.training_job_fail(start=first, code="platform", message="done")

    while tickets:
        start = jobs.training_job_start(job_id=tickets.pop(0))
        if start is None:
            continue
        order.append(start.job_id)
        jobs.training_job_fail(start=start, code="platform", message="done")

    # The single job started right after the one job that was running when it arrived,
    # not after the 49 queued before it.
    assert order.index(single) == 1
    # Every job ran exactly once, and the tickets were exactly enough.
    assert sorted(order) == sorted([*hog, single])
    assert all(row(j).attempt == 1 for j in order)
    # A duplicate or redelivered ticket, once nothing is queued, is harmless.
    assert jobs.training_job_start(job_id=single) is None
    assert jobs.training_job_start(job_id=hog[0]) is None
    assert TrainingJob.objects.unscoped_all_tenants().filter(attempt__gt=1).count() == 0


def test_ticket_of_a_tenant_at_its_limit_runs_another_tenants_job(tenant, other_tenant):
    set_plan_limits(max_running_jobs=1, max_active_jobs=10)
    a1, a2 = submit(tenant, dataset_of(tenant), 2)
    running = jobs.training_job_start(job_id=a1)
    assert running.job_id == a1
    b1 = submit(other_tenant, dataset_of(other_tenant))[0]
    # a2's ticket cannot start a2 (its tenant runs its one allowed job): it starts b1.
    taken = jobs.training_job_start(job_id=a2)
    assert taken.job_id == b1 and row(a2).status == "queued"
    # b1's ticket finds only a2, held back by its tenant's limit: deferred, nothing changed.
    with pytest.raises(jobs.Deferred):
        jobs.training_job_start(job_id=b1)
    assert row(a2).status == "queued" and row(a2).attempt == 0
    jobs.training_job_fail(start=running, code="platform", message="done")
    assert jobs.training_job_start(job_id=b1).job_id == a2


def test_a_ticket_only_claims_jobs_of_its_own_device(tenant, other_tenant):
    # The free plan refuses GPU time (its GPU quota is 0); pro sells it.
    billing_plan_change(organization=other_tenant.org, plan_code="pro", actor=Actor.system())
    cpu = submit(tenant, dataset_of(tenant))[0]
    gpu = submit(other_tenant, dataset_of(other_tenant), device="gpu")[0]
    start = jobs.training_job_start(job_id=gpu)
    assert start.job_id == gpu
    assert jobs.training_job_start(job_id=gpu) is None  # no other gpu job: dropped
    assert row(cpu).status == "queued"


def test_cancelled_job_leaves_a_spare_ticket_that_is_dropped(tenant):
    job_id = submit(tenant, dataset_of(tenant))[0]
    jobs.training_job_cancel(job=row(job_id), actor=Actor.system())
    assert jobs.training_job_start(job_id=job_id) is None
    assert row(job_id).status == "cancelled" and row(job_id).attempt == 0
    assert jobs.training_job_start(job_id="tj_unknown") is None


def test_defer_backoff_grows_and_is_capped(settings):
    settings.TRAINYARD_DEFER_BASE_SECONDS = 1.0
    settings.TRAINYARD_DEFER_MAX_SECONDS = 30.0
    for retries in range(12):
        expected = min(30.0, 2.0**retries)
        for _ in range(20):
            assert 0.75 * expected <= jobs.defer_countdown(retries) <= 1.25 * expected
    assert jobs.defer_countdown(10_000) <= 37.5  # no overflow far past the cap


def test_worker_lost_after_max_attempts_and_not_billed(tenant, settings):
    settings.TRAINYARD_TRAINING_MAX_ATTEMPTS = 3
    job_id = submit(tenant, dataset_of(tenant))[0]
    start = jobs.training_job_start(job_id=job_id)
    attempts = []
    for _ in range(3):
        attempts.append(start.attempt)
        # The worker is killed mid-epoch: it wrote progress, then stopped beating. Its own
        # message comes back (reject_on_worker_lost) as a spare queue ticket: nothing queued.
        jobs.JobMonitor(start).on_epoch(1, {"loss": 0.5})
        assert jobs.training_job_start(job_id=job_id) is None
        make_stale(job_id)
        assert jobs.training_jobs_reap_stuck() == [job_id]
        start = jobs.training_job_start(job_id=job_id, takeover=True)  # the reaper's ticket
    assert attempts == [1, 2, 3]
    assert start is None
    job = row(job_id)
    assert job.status == "failed" and job.error["code"] == "worker_lost"
    assert job.usage["billing_reason"] == "worker_lost" and job.usage["charge"] == "0.00"
    assert UsageEvent.objects.for_tenant(tenant.org).count() == 0
    assert job.attempt == 3
    failed = JobEvent.objects.for_tenant(tenant.org).get(job_id=job_id, type="failed")
    assert failed.data == {"code": "worker_lost", "attempts": 3}
    assert jobs.training_jobs_reap_stuck() == []  # terminal: never redelivered again


def test_max_attempts_of_one_fails_at_the_first_takeover(tenant, settings):
    settings.TRAINYARD_TRAINING_MAX_ATTEMPTS = 1
    job_id = submit(tenant, dataset_of(tenant))[0]
    jobs.training_job_start(job_id=job_id)
    make_stale(job_id)
    assert jobs.training_job_start(job_id=job_id, takeover=True) is None
    assert row(job_id).error["code"] == "worker_lost"


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_job_or_pass_the_tenant_limit():
    set_plan_limits(max_running_jobs=1, max_active_jobs=10)
    a, b = make_tenant("acme"), make_tenant("globex")
    a_jobs = submit(a, dataset_of(a), 3)
    b_jobs = submit(b, dataset_of(b), 1)
    tickets = [*a_jobs, *b_jobs]
    barrier = threading.Barrier(len(tickets))
    outcomes: list[str] = []
    lock = threading.Lock()

    def claim(ticket: str) -> None:
        barrier.wait()
        try:
            start = jobs.training_job_start(job_id=ticket)
            outcome = start.job_id if start else "none"
        except jobs.Deferred:
            outcome = "deferred"
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=claim, args=(t,)) for t in tickets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    started = [o for o in outcomes if o.startswith("tj_")]
    assert len(started) == len(set(started)) == 2  # one per tenant, never the same job twice
    assert outcomes.count("deferred") == 2  # the hog's other two wait; none is dropped
    running = TrainingJob.objects.unscoped_all_tenants().filter(status="running")
    assert sorted(running.values_list("organization_id", flat=True)) == sorted([a.org.pk, b.org.pk])


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_beats_through_a_slow_phase(settings):
    settings.TRAINYARD_HEARTBEAT_STALE_SECONDS = 1
    t = make_tenant("acme")
    job_id = submit(t, dataset_of(t))[0]
    start = jobs.training_job_start(job_id=job_id)
    with jobs.JobMonitor(start, heartbeat_every=0.2):
        # A phase with no batches (adapt, evaluation, export, hub load), 2.5× the stale limit,
        # during which the reaper runs and a redelivered ticket arrives, twice.
        for _ in range(2):
            time.sleep(1.25)
            assert jobs.training_jobs_reap_stuck() == []
            assert jobs.training_job_start(job_id=job_id, takeover=True) is None
    assert row(job_id).attempt == 1 and row(job_id).status == "running"
    # Once the attempt's beats stop (its worker died), the job does go stale: the test can fail.
    time.sleep(1.5)
    assert jobs.training_jobs_reap_stuck() == [job_id]
    assert jobs.training_job_start(job_id=job_id, takeover=True).attempt == 2


@pytest.mark.django_db(transaction=True)
def test_superseded_attempts_thread_stops_beating(settings):
    settings.TRAINYARD_HEARTBEAT_STALE_SECONDS = 1
    t = make_tenant("acme")
    job_id = submit(t, dataset_of(t))[0]
    first = jobs.training_job_start(job_id=job_id)
    monitor = jobs.JobMonitor(first, heartbeat_every=0.1)
    make_stale(job_id)
    second = jobs.training_job_start(job_id=job_id, takeover=True)
    assert second.attempt == 2
    monitor.beat_start()
    time.sleep(0.5)
    assert monitor._thread is not None and not monitor._thread.is_alive()  # gave up itself
    monitor.beat_stop()
    assert monitor.beat() is False


def test_a_queue_ticket_never_takes_over_so_no_queued_job_is_stranded(tenant, other_tenant):
    """Queue tickets are fungible: if the ticket naming a job that another ticket claimed were
    spent on taking that job over, a queued job would be left without a ticket."""
    set_plan_limits(max_active_jobs=10)
    ds = dataset_of(tenant)
    earlier = jobs.training_job_start(job_id=submit(tenant, ds)[0])
    jobs.training_job_fail(start=earlier, code="platform", message="done")
    # The tenant of `a` ran a job recently, so `b` is fairer.
    a = submit(tenant, ds)[0]
    b = submit(other_tenant, dataset_of(other_tenant))[0]
    claimed = jobs.training_job_start(job_id=a)  # a's ticket claims b
    assert claimed.job_id == b and row(a).status == "queued"
    make_stale(b)  # b's worker died
    taken = jobs.training_job_start(job_id=b)  # b's own ticket arrives: it is a's now
    assert taken.job_id == a and row(b).attempt == 1
    assert jobs.training_jobs_reap_stuck() == [b]
    assert jobs.training_job_start(job_id=b, takeover=True).attempt == 2
    # A takeover ticket for a live or finished job does nothing, and never claims queued work.
    c = submit(tenant, ds)[0]
    assert jobs.training_job_start(job_id=b, takeover=True) is None
    assert jobs.training_job_start(job_id=c, takeover=True) is None
    assert row(c).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_a_deferred_ticket_takes_no_lock():
    """A tenant at its limit is skipped in SQL: its ticket neither locks nor waits for the
    tenant's organisation row (held here by another transaction, as a submission holds it)."""
    from django.db import transaction

    from saas.tenancy.models import Organization

    set_plan_limits(max_running_jobs=1, max_active_jobs=10)
    t = make_tenant("acme")
    first, second = submit(t, dataset_of(t), 2)
    assert jobs.training_job_start(job_id=first).job_id == first
    holding, release = threading.Event(), threading.Event()

    def hold_org_lock() -> None:
        with transaction.atomic():
            Organization.objects.select_for_update().get(pk=t.org.pk)
            holding.set()
            release.wait(30)
        connection.close()

    holder = threading.Thread(target=hold_org_lock)
    holder.start()
    assert holding.wait(10)
    outcome: list[str] = []

    def redeem() -> None:
        try:
            jobs.training_job_start(job_id=second)
            outcome.append("started")
        except jobs.Deferred:
            outcome.append("deferred")
        finally:
            connection.close()

    claimer = threading.Thread(target=redeem)
    t0 = time.monotonic()
    claimer.start()
    claimer.join(5)
    waited = time.monotonic() - t0
    release.set()
    holder.join(10)
    claimer.join(10)
    assert outcome == ["deferred"] and waited < 2, (outcome, waited)
    assert row(second).status == "queued"
