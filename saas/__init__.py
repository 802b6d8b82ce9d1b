"""Trainyard's Django project. Importing it loads the Celery app (no TensorFlow)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
