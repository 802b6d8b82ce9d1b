"""Entry point of the worker process: ``celery -A workers.celery_app worker -Q …``.

Uses the shared Celery app and registers the tasks of the ``workers.tasks`` package. They are
found by ``autodiscover_tasks``, which imports them once Celery's Django fix-up has run
``django.setup()``, so the task modules import the saas services (and so models) at the top.
TensorFlow is imported by the runners on first use, i.e. in the pool's child process after
fork, never here.

Once the worker is ready, a daemon thread of its main process writes its liveness beat for
every queue it consumes (:mod:`saas.jobs.liveness`), so the API can say when no worker serves
``training-gpu``; the beat stops with the process, and a clean shutdown deregisters at once.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_ready, worker_shutdown

from saas.celery import app

# Finds workers.tasks (the package imports training, maintenance and inference).
app.autodiscover_tasks(["workers"])

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
