"""Celery tasks and everything that imports TensorFlow (see DESIGN.md §1, §5)."""
