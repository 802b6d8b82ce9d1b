"""The Celery app, its queues and routing.

The web tier only *sends* tasks by name (``send_task``) so it never imports ``workers`` (and
so never TensorFlow); the worker process imports ``workers.tasks``.

Queues, and the worker that consumes each (``make run``, ``make demo``, docker-compose.yml):

- ``training-cpu`` / ``training-gpu``: training jobs, one at a time per worker (``-c 1``,
  prefetch 1), hours long.
- ``maintenance``: Celery beat's periodic tasks (:data:`MAINTENANCE_TASKS`), on their own
  worker (which also runs beat) so the reaper, period close and storage sampling never wait
  behind a training job.

Online predictions never go through Celery: the data plane (``serve``) answers them; beat only
flushes its metering windows to the ledger (``FLUSH_PREDICTIONS``), as a backstop for when no
``serve`` replica is running to do it.
"""

import enum
import os
from typing import Any

from celery import Celery
from django_structlog.celery.signals import modify_context_before_task_publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")


class Queue(enum.StrEnum):
    """Queues; training queues get their own workers (prefetch 1, long time limits)."""

    TRAINING_CPU = "training-cpu"
    TRAINING_GPU = "training-gpu"
    MAINTENANCE = "maintenance"


class TaskName(enum.StrEnum):
    """Task names, shared by the sender (web tier) and the worker."""

    TRAIN = "trainyard.jobs.train"
    REAP_STUCK = "trainyard.jobs.reap_stuck"
    PURGE_IDEMPOTENCY = "trainyard.api.purge_idempotency_keys"
    PERIOD_CLOSE = "trainyard.billing.period_close"
    STORAGE_SAMPLE = "trainyard.billing.storage_sample"
    ENFORCE_GRACE = "trainyard.billing.enforce_grace"
    USAGE_WARNINGS = "trainyard.billing.usage_warnings"
    STRIPE_PUSH_RETRY = "trainyard.billing.stripe_push_retry"
    FLUSH_PREDICTIONS = "trainyard.inference.flush_prediction_windows"


#: The periodic tasks Celery beat sends (``CELERY_BEAT_SCHEDULE``); all go to ``maintenance``.
MAINTENANCE_TASKS = frozenset(
    {
        TaskName.REAP_STUCK,
        TaskName.PURGE_IDEMPOTENCY,
        TaskName.PERIOD_CLOSE,
        TaskName.STORAGE_SAMPLE,
        TaskName.ENFORCE_GRACE,
        TaskName.USAGE_WARNINGS,
        TaskName.STRIPE_PUSH_RETRY,
        TaskName.FLUSH_PREDICTIONS,
    }
)


def training_queue(device: str) -> Queue:
    """The queue for a training job on ``device`` (``"cpu"`` or ``"gpu"``)."""
    return Queue.TRAINING_GPU if device == "gpu" else Queue.TRAINING_CPU


app = Celery("trainyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = Queue.TRAINING_CPU.value
# Routing by name, so a maintenance task sent without an explicit queue (beat, a shell,
# `send_task`) still lands on the maintenance worker and never behind a training job.
app.conf.task_routes = {
    **{name.value: {"queue": Queue.MAINTENANCE.value} for name in MAINTENANCE_TASKS},
}


#: The log context a task inherits from whoever sent it (django-structlog puts it in the
#: message's headers): the request's id and tenant, not its client address or user agent.
TASK_CONTEXT_KEYS = frozenset(
    {"request_id", "organization_id", "api_key_id", "user_id", "parent_task_id"}
)


def _task_context(context: dict[str, Any], **_kwargs: Any) -> None:
    for key in set(context) - TASK_CONTEXT_KEYS:
        del context[key]


modify_context_before_task_publish.connect(_task_context, dispatch_uid="trainyard-task-context")
