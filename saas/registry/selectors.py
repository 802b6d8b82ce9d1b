"""Reads for trained models, tenant-scoped."""

import copy

from django.db.models import F, QuerySet

from saas.common.errors import NotFound
from saas.common.jsonb import MetricsSummary
from saas.common.ttlcache import TTLCache

from .models import TrainedModel


def model_list(*, organization_id: str) -> QuerySet[TrainedModel]:
    """The organisation's live models (deleted ones are skipped)."""
    return TrainedModel.objects.for_tenant(organization_id).filter(deleted_at__isnull=True)


def model_get_for_delete(*, organization_id: str, model_id: str) -> TrainedModel:
    """The organisation's model ``model_id`` even if already deleted (so a repeated DELETE is
    answered like the first). Raises NotFound if missing or another tenant's."""
    model = next(
        iter(TrainedModel.objects.for_tenant(organization_id).filter(pk=model_id)[:1]), None
    )
    if model is None:
        raise NotFound(f"No model {model_id!r}.")
    return model


def model_list_summaries(*, organization_id: str) -> QuerySet[TrainedModel]:
    """:func:`model_list` for list pages: ``metrics`` is left unread (deferred) and each row has
    ``metrics_summary``, the metrics without ``per_class`` and ``confusion_matrix`` (cut in
    SQL), so a page costs the same whatever the models' number of classes."""
    return (
        model_list(organization_id=organization_id)
        .defer("metrics")
        .annotate(metrics_summary=MetricsSummary(F("metrics")))
    )


def model_get(*, organization_id: str, model_id: str) -> TrainedModel:
    """Raises NotFound if missing or another tenant's. One query by primary key (no ORDER BY:
    ``.first()`` would add one, and building it is a fifth of this read's cost)."""
    model = next(iter(model_list(organization_id=organization_id).filter(pk=model_id)[:1]), None)
    if model is None:
        raise NotFound(f"No model {model_id!r}.")
    return model


# (organisation id, model id) -> the row. Trained models are immutable once registered (the
# admin is read-only) until deleted; the bound (TRAINYARD_REQUEST_CACHE_SECONDS, ≤ 1 s) is how
# long a process may still show a model just deleted.
_models: TTLCache[tuple[str, str], TrainedModel] = TTLCache()


def model_get_cached(*, organization_id: str, model_id: str) -> TrainedModel:
    """:func:`model_get` for read-only request paths (``GET /v1/models/{id}``): the row is read
    at most once per ``TRAINYARD_REQUEST_CACHE_SECONDS`` (≤ 1 s) per process, keyed by the
    organisation too, so another tenant's id is still a miss and a 404. Returns this caller's
    own copy. Raises NotFound if missing or another tenant's (misses are not cached)."""
    model = _models.get(
        (organization_id, model_id),
        lambda: next(
            iter(model_list(organization_id=organization_id).filter(pk=model_id)[:1]), None
        ),
    )
    if model is None:
        raise NotFound(f"No model {model_id!r}.")
    return copy.copy(model)


def model_for_job(*, organization_id: str, job_id: str) -> TrainedModel | None:
    """The job's model, or None; its ``metrics`` (the job's own, which the caller has) are
    read only if used (deferred: with 2,000 classes they are ~8 MB)."""
    return (
        model_list(organization_id=organization_id).filter(job_id=job_id).defer("metrics").first()
    )
