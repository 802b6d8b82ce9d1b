"""Reads for datasets, always tenant-scoped."""

from saas.common.errors import NotFound
from saas.tenancy.models import Organization

from .models import Dataset


def dataset_list(*, organization: Organization):
    """The organisation's live datasets, newest first (a QuerySet)."""
    return Dataset.objects.for_tenant(organization).exclude(status=Dataset.Status.DELETED)


def dataset_get(*, organization: Organization, dataset_id: str) -> Dataset:
    """One live dataset. Raises NotFound if missing, deleted or another tenant's."""
    ds = dataset_list(organization=organization).filter(pk=dataset_id).first()
    if ds is None:
        raise NotFound(f"No dataset {dataset_id!r}.")
    return ds
