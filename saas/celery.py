"""The Celery app, its queues and routing.

The web tier only *sends* tasks by name (``send_task``) so it never imports ``workers`` (and
so never TensorFlow); the worker process imports ``workers.tasks``.
"""

import enum
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")


class Queue(enum.StrEnum):
    """Queues; training queues get their own workers (prefetch 1, long time limits)."""

    TRAINING_CPU = "training-cpu"
    TRAINING_GPU = "training-gpu"
    INFERENCE = "inference"


class TaskName(enum.StrEnum):
    """Task names, shared by the sender (web tier) and the worker."""

    TRAIN = "trainyard.jobs.train"
    PREDICT = "trainyard.inference.predict"
    REAP_STUCK = "trainyard.jobs.reap_stuck"
    PURGE_IDEMPOTENCY = "trainyard.api.purge_idempotency_keys"
    PERIOD_CLOSE = "trainyard.billing.period_close"
    STORAGE_SAMPLE = "trainyard.billing.storage_sample"
    ENFORCE_GRACE = "trainyard.billing.enforce_grace"
    USAGE_WARNINGS = "trainyard.billing.usage_warnings"


def training_queue(device: str) -> Queue:
    """The queue for a training job on ``device`` (``"cpu"`` or ``"gpu"``)."""
    return Queue.TRAINING_GPU if device == "gpu" else Queue.TRAINING_CPU


app = Celery("trainyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = Queue.TRAINING_CPU.value
