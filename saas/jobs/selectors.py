"""Reads for training jobs, tenant-scoped, including why a queued job waits."""

from __future__ import annotations

from saas.common.errors import NotFound
from saas.tenancy.plans import plan_limits

from .models import JobEvent, TrainingJob

Status = TrainingJob.Status


def training_job_list(*, organization_id: str):
    """The organisation's training jobs, newest first."""
    return TrainingJob.objects.for_tenant(organization_id).order_by("-created_at", "-pk")


def training_job_get(*, organization_id: str, job_id: str) -> TrainingJob:
    """Raises NotFound if missing or another tenant's."""
    job = training_job_list(organization_id=organization_id).filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"No training job {job_id!r}.")
    return job


def training_job_events(*, job: TrainingJob):
    return (
        JobEvent.objects.for_tenant(job.organization_id)
        .filter(job=job)
        .order_by("created_at", "id")
    )


def training_job_queue_info(*, job: TrainingJob) -> tuple[int | None, str | None]:
    """``(queue_position, wait_reason)`` for a queued job, ``(None, None)`` otherwise.

    ``queue_position`` is 1 for the next job to start on the job's device queue (all tenants;
    only a count is revealed). ``wait_reason`` is ``tenant_limit`` while the organisation
    already runs its plan's ``max_running_jobs``, else ``capacity``
    (waiting for a free worker slot).
    """
    if job.status != Status.QUEUED:
        return None, None
    ahead = (
        TrainingJob.objects.unscoped_all_tenants()  # a count across tenants, no rows revealed
        .filter(status=Status.QUEUED, device=job.device, created_at__lt=job.created_at)
        .count()
    )
    running_here = (
        TrainingJob.objects.for_tenant(job.organization_id).filter(status=Status.RUNNING).count()
    )
    if running_here >= plan_limits(job.organization.plan)["max_running_jobs"]:
        return ahead + 1, "tenant_limit"
    return ahead + 1, "capacity"
