"""Worker side: take a queued (or abandoned) job and start a new attempt of it.

A system transition: the job's own row says who created it, so these take no actor.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from saas.billing.selectors import plan_limits_get
from saas.billing.services import PaymentRequired, billing_check
from saas.common.actor import Actor
from saas.metering.models import Meter
from saas.tenancy.models import Organization

from ..models import TrainingJob
from ..usage import JobUsage
from ._common import Status, event, finish, stale


@dataclass(frozen=True)
class JobStart:
    """What a worker needs to run one attempt of a job (plain data; no ORM objects)."""

    job_id: str
    organization_id: str
    attempt: int
    task: str
    base_model: str
    handle: str | None
    hyperparameters: dict
    seed: int
    dataset_key: str
    text_column: str
    label_column: str


class Deferred(Exception):
    """The job cannot start yet (the tenant's concurrency limit); retry after ``countdown`` s."""

    def __init__(self, countdown: float) -> None:
        super().__init__(countdown)
        self.countdown = countdown


def training_job_start(*, job_id: str) -> JobStart | None:
    """Worker side: move the job to ``running`` (a new attempt) and return what to run.

    Returns None when there is nothing to do: unknown job, already finished or cancelled, or
    running elsewhere with a fresh heartbeat (a redelivered message). A job whose worker died
    (heartbeat older than ``TRAINYARD_HEARTBEAT_STALE_SECONDS``) is taken over as a new attempt.
    Raises :class:`Deferred` when the tenant is at its concurrency limit.
    """
    now = timezone.now()
    with transaction.atomic():
        # The one unscoped read of a task: the job row is what tells us the tenant.
        job = (
            TrainingJob.objects.unscoped_all_tenants().select_for_update().filter(pk=job_id).first()
        )
        if job is None or job.status in TrainingJob.TERMINAL_STATUSES:
            return None
        if job.status == Status.RUNNING and not stale(job, now):
            return None
        if job.cancel_requested_at is not None:
            finish(job, Status.CANCELLED)
            event(job, "cancelled", "Cancelled before the worker resumed it")
            return None
        if job.status == Status.QUEUED:
            org = Organization.objects.select_for_update().get(pk=job.organization_id)
            running = (
                TrainingJob.objects.for_tenant(job.organization_id)
                .filter(status=Status.RUNNING)
                .count()
            )
            # Read under the organisation's lock, which billing_plan_change takes too.
            if running >= plan_limits_get(organization=org).max_running_jobs:
                raise Deferred(countdown=5.0)
        if job.status == Status.QUEUED:
            try:
                billing_check(
                    organization=org,
                    meter=Meter.TRAINING_COMPUTE_SECONDS,
                    quantity=Decimal(0),
                    # The key that created the job: its spend cap still gates the start.
                    actor=Actor(api_key_id=job.created_by_key_id),
                )
            except PaymentRequired as refused:
                finish(
                    job,
                    Status.FAILED,
                    error={"code": "payment_required", "message": refused.detail},
                    usage=JobUsage.not_billed().to_dict(),
                )
                event(job, "failed", refused.detail, code="payment_required")
                return None
        resumed = job.status == Status.RUNNING
        job.status = Status.RUNNING
        job.attempt += 1
        job.heartbeat_at = now
        job.started_at = job.started_at or now
        job.epoch = 0
        TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
            status=job.status,
            attempt=job.attempt,
            heartbeat_at=now,
            started_at=job.started_at,
            epoch=0,
        )
        event(
            job,
            "started",
            "Restarted after the previous worker stopped responding" if resumed else "Started",
            attempt=job.attempt,
        )
        dataset = job.dataset
        handle = settings.TRAINYARD_HUB_HANDLES.get(job.base_model)
        return JobStart(
            job_id=job.id,
            organization_id=job.organization_id,
            attempt=job.attempt,
            task=job.task,
            base_model=job.base_model,
            handle=handle,
            hyperparameters=job.hyperparameters,
            seed=job.seed,
            dataset_key=dataset.storage_key,
            text_column=dataset.text_column or "text",
            label_column=dataset.label_column or "label",
        )


def attempt_workdir(start: JobStart) -> Path:
    """A fresh local scratch directory for one attempt (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix=f"trainyard-{start.job_id}-a{start.attempt}-"))


def remove_workdir(path: Path) -> None:
    """Remove an attempt's scratch directory (missing is fine)."""
    shutil.rmtree(path, ignore_errors=True)
