"""The training time limit, as Celery delivers it (``SoftTimeLimitExceeded`` raised by a signal
handler in the middle of training), ends the job ``failed`` with ``time_limit`` and bills the
compute used; it used to be a free ``failed_platform``."""

from __future__ import annotations

import signal

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from tests.conftest import small_text_rows, text_csv, upload
from workers.tasks.training import run_training

# Transactional: the backstop may replace a connection a signal left mid-command.
pytestmark = [pytest.mark.tf, pytest.mark.django_db(transaction=True)]


def _raise_soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


def _time_limited_job(tenant) -> jobs.JobStart:
    ds = upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    r = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds, "hyperparameters": {"epochs": 200, "batch_size": 1}},
        format="json",
    )
    assert r.status_code == 201, r.content
    return jobs.training_job_start(job_id=r.json()["id"])


def _assert_billed_time_limit(tenant, job_id: str, *, at_least: float, partial: bool) -> None:
    job = TrainingJob.objects.for_tenant(tenant.org).get(pk=job_id)
    assert job.status == "failed" and job.error["code"] == "time_limit", job.error
    assert job.usage["billing_reason"] == "time_limit"
    assert job.epoch < 200  # stopped mid-job (how many epochs fit depends on the machine)
    events = {e.meter: e for e in UsageEvent.objects.for_tenant(tenant.org)}
    assert events["training_compute_seconds"].quantity >= at_least
    # 24 distinct rows, 2 of each class held out by the grouped split: 20 trained on. A stop
    # between batches counts the batches of the epoch it cut short too (batch size 1).
    examples = events["training_examples"].quantity
    if partial:
        assert 20 * job.epoch <= examples < 20 * (job.epoch + 1)
    else:
        assert examples == 20 * job.epoch


def test_the_stop_seconds_end_training_between_batches_and_bill_it(tenant, settings):
    import tensorflow  # noqa: F401  loaded before the clock starts, so the limit hits training

    settings.TRAINYARD_TRAINING_STOP_SECONDS = 6
    start = _time_limited_job(tenant)
    run_training(start)
    _assert_billed_time_limit(tenant, start.job_id, at_least=5, partial=True)


def test_a_soft_time_limit_signal_is_the_backstop_and_is_billed(tenant):
    """Celery's soft limit (a signal, landing anywhere, e.g. inside a database call) still
    ends the job billed, when the monitor's own limit is further away."""
    import tensorflow  # noqa: F401

    start = _time_limited_job(tenant)
    previous = signal.signal(signal.SIGALRM, _raise_soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 8.0)
    try:
        run_training(start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    _assert_billed_time_limit(tenant, start.job_id, at_least=6, partial=False)
