"""Entry point of the worker process: ``celery -A workers.celery_app worker -Q …``.

Uses the shared Celery app and registers the tasks of the ``workers.tasks`` package. They are
found by ``autodiscover_tasks``, which imports them once Celery's Django fix-up has run
``django.setup()``, so the task modules import the saas services (and so models) at the top.
TensorFlow is imported by the runners on first use, i.e. in the pool's child process after
fork, never here.
"""

from saas.celery import app

# Finds workers.tasks (the package imports training, maintenance and inference).
app.autodiscover_tasks(["workers"])

__all__ = ["app"]
