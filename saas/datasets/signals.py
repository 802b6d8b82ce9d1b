"""Signals the datasets app sends to the apps above it (which it must not import)."""

from django.dispatch import Signal

#: Sent by ``dataset_delete`` inside its transaction, after the dataset is marked deleted,
#: with ``organization_id`` and ``dataset_id`` (str) and ``actor``. Receivers delete what they
#: copied from the dataset (``saas.jobs.receivers``: the jobs' misclassified examples) and
#: return a ``{name: count}`` dict, which goes into the ``dataset.deleted`` audit event.
dataset_deleted = Signal()
