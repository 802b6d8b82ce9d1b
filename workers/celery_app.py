"""Entry point of the worker process: ``celery -A workers.celery_app worker -Q …``.

Imports the shared Celery app and registers the tasks. TensorFlow is imported inside the
tasks, i.e. in the pool's child process after fork, never here.
"""

from saas.celery import app

import workers.tasks  # noqa: E402,F401  # isort: skip  (registers the tasks)

__all__ = ["app"]
