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

pytestmark = [pytest.mark.tf, pytest.mark.django_db]


def _raise_soft_limit(signum, frame):
    raise SoftTimeLimitExceeded()


def test_a_soft_time_limit_mid_training_is_billed(tenant):
    import tensorflow  # noqa: F401  loaded before the timer starts, so the limit hits training

    ds = upload(tenant.client, text_csv(small_text_rows())).json()["id"]
    r = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds, "hyperparameters": {"epochs": 200, "batch_size": 1}},
        format="json",
    )
    assert r.status_code == 201, r.content
    start = jobs.training_job_start(job_id=r.json()["id"])
    previous = signal.signal(signal.SIGALRM, _raise_soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 8.0)
    try:
        run_training(start)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    job = TrainingJob.objects.for_tenant(tenant.org).get(pk=start.job_id)
    assert job.status == "failed" and job.error["code"] == "time_limit", job.error
    assert job.usage["billing_reason"] == "time_limit"
    assert job.epoch < 200  # stopped mid-job (how many epochs fit depends on the machine)
    events = {e.meter: e for e in UsageEvent.objects.for_tenant(tenant.org)}
    assert events["training_compute_seconds"].quantity >= 6  # most of the 8 s were training
    assert events["training_examples"].quantity == 19 * job.epoch
