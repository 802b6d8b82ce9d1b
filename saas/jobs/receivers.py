"""Signal receivers connected in ``JobsConfig.ready``.

Datasets sit below jobs and must not import them, so jobs learns of a dataset's deletion from
``saas.datasets.signals.dataset_deleted`` rather than being called by the datasets service.
"""

from __future__ import annotations

from typing import Any

from .models import TrainingJob


def dataset_deleted(
    sender: Any, *, organization_id: str, dataset_id: str, **kwargs: Any
) -> dict[str, int]:
    """Delete the validation examples copied into the dataset's jobs
    (``TrainingJob.misclassified``: texts or archive member names from the dataset), in the
    deletion's transaction, so nothing of the deleted file outlives it. The jobs keep their
    metrics and timeline. Returns ``{"jobs_with_examples_removed": n}``."""
    n = (
        TrainingJob.objects.for_tenant(organization_id)
        .filter(dataset_id=dataset_id)
        .exclude(misclassified=[])
        .update(misclassified=[])
    )
    return {"jobs_with_examples_removed": n}
