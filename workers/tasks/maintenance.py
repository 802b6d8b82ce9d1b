"""Celery beat's periodic tasks, on their own ``maintenance`` queue and worker.

They used to share ``training-cpu`` behind a ``-c 1`` worker, so the reaper and period close
waited behind training and storage sampling expired unbilled while a long job ran. Each is
routed to ``maintenance`` by name (``saas.celery.MAINTENANCE_TASKS``) and scheduled there by
``CELERY_BEAT_SCHEDULE``; ``tests/workers/tasks/test_queues.py`` keeps the two in step.

Every task here is safe to run twice, so all of them are ``acks_late``: a message whose worker
died mid-task is delivered again rather than lost (period close must not be lost). Each
docstring says what makes its task idempotent.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from saas.billing.services import (
    period_close_previous_month,
    stripe_push_retry,
    usage_warnings_send_all,
)
from saas.billing.services import storage_sample as billing_storage_sample
from saas.billing.services.grace import billing_enforce_grace
from saas.celery import Queue, TaskName
from saas.common.actor import Actor
from saas.inference.services import prediction_windows_flush
from saas.jobs.services import training_jobs_reap_stuck
from saas.limits.idempotency import idempotency_purge

# Shared options. The time limit is far below the training one, so a hung task cannot hold the
# maintenance worker (and with it the reaper) for hours.
_MAINTENANCE = {
    "queue": Queue.MAINTENANCE.value,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "time_limit": settings.TRAINYARD_MAINTENANCE_TIME_LIMIT_SECONDS,
    "soft_time_limit": int(settings.TRAINYARD_MAINTENANCE_TIME_LIMIT_SECONDS * 0.95),
}


@shared_task(name=TaskName.REAP_STUCK, **_MAINTENANCE)
def reap_stuck() -> list[str]:
    """Re-enqueue running jobs whose worker stopped sending heartbeats (Celery beat).

    Returns the job ids re-enqueued. Idempotent: a second run may enqueue a job again, and the
    extra ``train`` message is a no-op (``training_job_start`` sees a fresh heartbeat).
    """
    return training_jobs_reap_stuck()


@shared_task(name=TaskName.FLUSH_PREDICTIONS, **_MAINTENANCE)
def flush_prediction_windows() -> int:
    """Write the data plane's closed metering windows to the ledger (Celery beat, every 10 s;
    each ``serve`` replica also does it every second). Returns the usage events written.

    Idempotent: each window's rows carry a unique idempotency key and the window is deleted
    from Redis only after they are committed (``saas.metering.windows``).
    """
    return prediction_windows_flush()


@shared_task(name=TaskName.PURGE_IDEMPOTENCY, **_MAINTENANCE)
def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key records older than 24 h (Celery beat, hourly); returns how many.

    Idempotent: a delete by age.
    """
    return idempotency_purge()


@shared_task(name=TaskName.PERIOD_CLOSE, **_MAINTENANCE)
def period_close() -> list[str]:
    """Close last month's billing period for every organisation (Celery beat, on the 1st).

    Returns the invoice numbers. Idempotent: a closed period returns its existing invoice
    (unique per organisation and period); only a Stripe push that failed earlier is retried.
    """
    return period_close_previous_month(actor=Actor.system())


@shared_task(name=TaskName.STRIPE_PUSH_RETRY, **_MAINTENANCE)
def retry_stripe_pushes() -> dict[str, int]:
    """Push the invoices whose Stripe push failed and whose backoff has passed (Celery beat,
    every 5 minutes). Returns ``{"pushed", "failed"}``.

    Idempotent: each invoice is claimed by a conditional update before its push, and the push
    uses Stripe idempotency keys derived from our ids and skips what Stripe already has.
    """
    return stripe_push_retry()


@shared_task(name=TaskName.STORAGE_SAMPLE, **_MAINTENANCE)
def storage_sample() -> int:
    """Meter one hour of dataset and model storage per organisation (Celery beat, hourly).

    Returns the usage events written. Idempotent per hour: the event's source id is the
    organisation and the hour, unique in the ledger.
    """
    return billing_storage_sample()


@shared_task(name=TaskName.ENFORCE_GRACE, **_MAINTENANCE)
def enforce_grace() -> list[str]:
    """Suspend organisations past due beyond the grace period (Celery beat, hourly).

    Returns the organisation ids suspended. Idempotent: only active organisations are suspended,
    under a row lock.
    """
    return billing_enforce_grace(actor=Actor.system())


@shared_task(name=TaskName.USAGE_WARNINGS, **_MAINTENANCE)
def usage_warnings() -> int:
    """Email 80 % / 100 % usage warnings, once per meter and month (Celery beat, hourly).

    Returns the warnings sent. Idempotent: the warnings sent are recorded on the billing account
    under a row lock and the email goes out after that commits, so a second run sends nothing.
    """
    return usage_warnings_send_all(actor=Actor.system())
