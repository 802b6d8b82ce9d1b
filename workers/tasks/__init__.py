"""Celery tasks: thin glue between the saas services (state, ledger) and the pure runners.

One module per queue: :mod:`.training` (``training-cpu`` / ``training-gpu``),
:mod:`.maintenance` (Celery beat's periodic tasks, ``maintenance``). Online predictions are
not Celery's: the data plane (``serve``) answers them. The Celery app finds this package with ``autodiscover_tasks`` once Django is
set up (``workers/celery_app.py``); importing it registers every task. Task names are
``saas.celery.TaskName``; the web tier sends them by name and never imports this package.
"""

from celery.signals import worker_process_init
from django.db import connections

from workers.tasks import maintenance, training

__all__ = ["maintenance", "training"]


@worker_process_init.connect
def _child_started(**_kwargs):
    # Each pool child opens its own database connections (never share the parent's).
    for conn in connections.all(initialized_only=True):
        conn.close()
