"""Entry point of the worker process: ``celery -A workers.celery_app worker -Q …``.

Uses the shared Celery app and registers the tasks of the ``workers.tasks`` package. They are
found by ``autodiscover_tasks``, which imports them once Celery's Django fix-up has run
``django.setup()``, so the task modules import the saas services (and so models) at the top.
TensorFlow is imported by the runners on first use, i.e. in the pool's child process after
fork, never here.

Once the worker is ready, a daemon thread of its main process writes its liveness beat for
every queue it consumes (:mod:`saas.jobs.liveness`), so the API can say when no worker serves
``training-gpu``; the beat stops with the process, and a clean shutdown deregisters at once.

Logs: the worker keeps Django's ``LOGGING`` (JSON lines, ``saas.common.logs``) instead of
Celery's own set-up, and django-structlog binds ``task_id`` and the context the sender had
(``request_id``, ``organization_id``: ``saas.celery.TASK_CONTEXT_KEYS``) around every task,
and logs ``task_started`` / ``task_succeeded`` / ``task_failed``.
"""

from __future__ import annotations

import logging
import logging.config
import threading
from typing import Any

from celery import bootsteps
from celery.signals import (
    setup_logging,
    task_failure,
    task_prerun,
    task_rejected,
    task_retry,
    task_revoked,
    task_success,
    task_unknown,
    worker_ready,
    worker_shutdown,
)
from django_structlog.celery.receivers import CeleryReceiver

from saas.celery import app

# Finds workers.tasks (the package imports training, maintenance and inference).
app.autodiscover_tasks(["workers"])


@setup_logging.connect
def _django_logging(**_kwargs: Any) -> None:
    """Celery's logging set-up, replaced by Django's ``LOGGING`` (a receiver of this signal
    stops Celery from configuring handlers and formatters of its own, in the main process
    and in each pool child), so the worker's lines are the same JSON as the web tier's."""
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


_task_log_receiver = CeleryReceiver()


class TaskLogContext(bootsteps.Step):
    """django-structlog's worker side: around each task, ``task_id`` and the sender's context
    bound, and its lifecycle logged. As its ``DjangoStructLogInitStep``, less the publish
    receivers, which its app config already connected in this process too
    (``DJANGO_STRUCTLOG_CELERY_ENABLED``): connected twice, every enqueued task would be
    logged twice. One receiver for the process, connected once however many workers start
    (tests start several)."""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        r = _task_log_receiver
        for name, signal, handler in (
            ("prerun", task_prerun, r.receiver_task_prerun),
            ("retry", task_retry, r.receiver_task_retry),
            ("success", task_success, r.receiver_task_success),
            ("failure", task_failure, r.receiver_task_failure),
            ("revoked", task_revoked, r.receiver_task_revoked),
            ("unknown", task_unknown, r.receiver_task_unknown),
            ("rejected", task_rejected, r.receiver_task_rejected),
        ):
            signal.connect(handler, weak=False, dispatch_uid=f"trainyard-log-task-{name}")


app.steps["worker"].add(TaskLogContext)

log = logging.getLogger(__name__)
_beat_stop = threading.Event()
_registered: dict[str, list[str]] = {}


def _consumed_queues(consumer) -> list[str]:
    return sorted(consumer.app.amqp.queues.consume_from or {})


def _beat_forever(hostname: str, queues: list[str], every: float) -> None:
    from saas.jobs.liveness import worker_beat

    while True:
        try:
            worker_beat(hostname=hostname, queues=queues)
        except Exception:  # Redis restarting: keep trying, the next beat re-registers
            log.warning("liveness beat failed", exc_info=True)
        if _beat_stop.wait(every):
            return


@worker_ready.connect
def _start_liveness_beat(sender=None, **_kwargs) -> None:
    from django.conf import settings

    hostname, queues = sender.hostname, _consumed_queues(sender)
    _registered[hostname] = queues
    threading.Thread(
        target=_beat_forever,
        args=(hostname, queues, float(settings.TRAINYARD_WORKER_BEAT_SECONDS)),
        name="liveness-beat",
        daemon=True,
    ).start()


@worker_shutdown.connect
def _stop_liveness_beat(**_kwargs) -> None:
    from saas.jobs.liveness import worker_forget

    _beat_stop.set()
    for hostname, queues in _registered.items():
        worker_forget(hostname=hostname, queues=queues)


__all__ = ["app"]
