"""Django app configuration for ``workers`` (management commands, Celery tasks).

Nothing here imports TensorFlow: the app registry is loaded by every process, the web tier too.
"""

from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """The ``workers`` Django app."""

    name = "workers"
    verbose_name = "Workers"
