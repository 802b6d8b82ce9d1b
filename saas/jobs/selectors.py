"""Reads for training jobs, tenant-scoped, including why a queued job waits.

A job read through :func:`training_job_list` (or :func:`training_job_get`) carries, computed in
the same SQL query, what its API and dashboard views show beside its own columns:

- ``queue_ahead``: for a queued job, how many queued jobs on its device queue are older (all
  tenants; only the count is revealed); None for any other status;
- ``org_running``: how many of the organisation's jobs are running;
- ``trained_model_id``: the id of the job's model, or None;
- ``max_running_jobs``: the organisation's plan's limit (from billing), read once per query;
- ``metrics_summary``: ``metrics`` without its per-class parts (``per_class``,
  ``confusion_matrix``), cut in SQL: a list leaves ``metrics`` and ``misclassified`` unread
  (deferred), so a page costs the same with 2 classes or 2,000 (whose matrix alone is ~8 MB);
- ``metrics_classes``: how many classes the confusion matrix has (None without metrics).

So a page of jobs costs one query whatever its length. :func:`training_job_get` reads the
whole row.
"""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    When,
)
from django.db.models.functions import Coalesce

from saas.billing.selectors import plan_limit_subquery
from saas.celery import training_queue
from saas.common.errors import NotFound
from saas.common.jsonb import MatrixClasses, MetricsSummary
from saas.registry.models import TrainedModel

from .liveness import workers_alive
from .models import JobEvent, TrainingJob

Status = TrainingJob.Status


def _count(queryset: QuerySet[TrainingJob], group: str) -> Subquery:
    """``SELECT count(*)`` of ``queryset`` as a scalar subquery (grouped by a column it fixes)."""
    return Subquery(
        queryset.order_by().values(group).annotate(n=Count("pk")).values("n"),
        output_field=IntegerField(),
    )


def training_job_list(
    *, organization_id: str, status: str | None = None, dataset_id: str | None = None
) -> QuerySet[TrainingJob]:
    """The organisation's training jobs, newest first, annotated as the module docstring says;
    only those in ``status`` and/or made from ``dataset_id`` when given."""
    ahead = TrainingJob.objects.unscoped_all_tenants().filter(  # a count across tenants
        status=Status.QUEUED, device=OuterRef("device"), created_at__lt=OuterRef("created_at")
    )
    running = TrainingJob.objects.for_tenant(organization_id).filter(status=Status.RUNNING)
    model = TrainedModel.objects.for_tenant(organization_id).filter(
        job_id=OuterRef("pk"),
        deleted_at__isnull=True,  # a deleted model is no longer the job's
    )
    # The three annotations are declared on TrainingJob so that readers of a listed row are
    # typed; django-stubs' plugin reports annotating a declared attribute as a redefinition.
    jobs = TrainingJob.objects.for_tenant(organization_id)
    if status:
        jobs = jobs.filter(status=status)
    if dataset_id:
        jobs = jobs.filter(dataset_id=dataset_id)
    return (
        jobs.select_related("organization")  # type: ignore[no-redef]
        .defer("metrics", "misclassified")
        .annotate(
            metrics_summary=MetricsSummary(F("metrics")),
            metrics_classes=MatrixClasses(F("metrics")),
            # CASE so PostgreSQL runs the correlated count for queued rows only.
            queue_ahead=Case(
                When(status=Status.QUEUED, then=Coalesce(_count(ahead, "device"), 0)),
                default=None,
                output_field=IntegerField(),
            ),
            org_running=Coalesce(_count(running, "organization_id"), 0),
            trained_model_id=Subquery(model.values("pk")[:1]),
            max_running_jobs=plan_limit_subquery(
                organization_id=organization_id, limit="max_running_jobs"
            ),
        )
        .order_by("-created_at", "-pk")
    )


def training_job_get(*, organization_id: str, job_id: str) -> TrainingJob:
    """One job, annotated like the list, with every column (its metrics and misclassified
    examples too). Raises NotFound if missing or another tenant's."""
    job = training_job_list(organization_id=organization_id).defer(None).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No training job {job_id!r}.")
    return job


def _annotated(job: TrainingJob) -> TrainingJob:
    """``job`` as the list reads it (re-read once if it came from elsewhere, e.g. a service)."""
    if hasattr(job, "queue_ahead"):
        return job
    return training_job_get(organization_id=job.organization_id, job_id=job.pk)


def training_job_events(*, job: TrainingJob) -> QuerySet[JobEvent]:
    """The job's timeline, oldest first."""
    return (
        JobEvent.objects.for_tenant(job.organization_id)
        .filter(job=job)
        .order_by("created_at", "id")
    )


def training_job_queue_info(*, job: TrainingJob) -> tuple[int | None, str | None]:
    """``(queue_position, wait_reason)`` for a queued job, ``(None, None)`` otherwise.

    ``queue_position`` is 1 for the next job to start on the job's device queue (all tenants;
    only a count is revealed). ``wait_reason`` is ``no_gpu_workers`` for a GPU job while no
    worker consuming ``training-gpu`` is alive (:mod:`saas.jobs.liveness`), else
    ``tenant_limit`` while the organisation already runs its plan's ``max_running_jobs``, else
    ``capacity`` (waiting for a free worker slot). No SQL query for a job read through this
    module (a GPU job costs one cached Redis read).
    """
    if job.status != Status.QUEUED:
        return None, None
    job = _annotated(job)
    if job.status != Status.QUEUED:  # it started since the caller read it
        return None, None
    if job.device == "gpu" and workers_alive(queue=training_queue("gpu").value) == 0:
        return (job.queue_ahead or 0) + 1, "no_gpu_workers"
    if job.org_running >= job.max_running_jobs:
        return (job.queue_ahead or 0) + 1, "tenant_limit"
    return (job.queue_ahead or 0) + 1, "capacity"


def training_job_confusion_matrix(*, organization_id: str, job_id: str) -> dict[str, Any] | None:
    """The job's full confusion matrix, ``{"labels": [C], "matrix": C x C counts}`` (rows: true
    class, columns: predicted), read alone (not the rest of the metrics); None before the job
    has metrics. Raises NotFound if the job is missing or another tenant's."""
    rows = list(
        TrainingJob.objects.for_tenant(organization_id)
        .filter(pk=job_id)
        .values_list("metrics__confusion_matrix", flat=True)[:1]
    )
    if not rows:
        raise NotFound(f"No training job {job_id!r}.")
    matrix = rows[0]
    return matrix if isinstance(matrix, dict) and "labels" in matrix else None


def training_job_model_id(*, job: TrainingJob) -> str | None:
    """The id of a succeeded job's model (None otherwise). No query for a job read through
    this module."""
    if job.status != Status.SUCCEEDED:
        return None
    return _annotated(job).trained_model_id
