"""Worker side: take a queued (or abandoned) job and start a new attempt of it.

A system transition: the job's own row says who created it, so these take no actor.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from saas.billing.models import BillingAccount
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
    # Resuming from a checkpoint (see .checkpoints): the last epoch it holds, the storage key,
    # and the billable seconds of the earlier attempts through that epoch.
    resume_epoch: int = 0
    checkpoint_key: str | None = None
    resumed_seconds: float = 0.0


class Deferred(Exception):
    """Queued jobs exist on the device but none may start now (every one belongs to a tenant
    at its ``max_running_jobs``). The ticket (Celery message) is kept: the task re-sends it
    after a capped exponential backoff (:func:`defer_countdown`)."""


def defer_countdown(retries: int) -> float:
    """Seconds before a deferred ticket is tried again, after ``retries`` deferrals so far:
    ``TRAINYARD_DEFER_BASE_SECONDS × 2**retries``, capped at ``TRAINYARD_DEFER_MAX_SECONDS``,
    with ±25 % jitter so deferred tickets do not poll in lockstep."""
    base = float(settings.TRAINYARD_DEFER_BASE_SECONDS)
    cap = float(settings.TRAINYARD_DEFER_MAX_SECONDS)
    delay = min(cap, base * 2 ** min(retries, 30))
    return round(delay * random.uniform(0.75, 1.25), 3)  # noqa: S311 (jitter, not secrecy)


def training_job_start(*, job_id: str, takeover: bool = False) -> JobStart | None:
    """Worker side: redeem one ticket (a ``train`` message) for one attempt of some job.

    Two kinds of ticket:

    - ``takeover=True``, sent by the reaper for a running job whose heartbeat went stale (its
      worker died): a new attempt of *that* job (resumed from its checkpoint), or — once
      ``TRAINYARD_TRAINING_MAX_ATTEMPTS`` attempts have started — ``failed`` with code
      ``worker_lost``, not billed. For a job that is not (or no longer) running with a stale
      heartbeat it does nothing. These tickets are extra: they may expire.
    - otherwise, the ticket sent when a job is created: it names a job but stands for a place
      on that job's device queue, and starts the *fairest* queued job there
      (:func:`_claim_fairest`): tenants with the fewest running jobs first, then the fewest
      started in the last ``TRAINYARD_FAIR_SHARE_WINDOW_SECONDS``, then the oldest job. Rows
      are claimed with ``SELECT … FOR UPDATE SKIP LOCKED``, so concurrent workers never claim
      the same job.

    Why every queued job runs, exactly once: each created job adds one queue ticket; a queue
    ticket is spent only by claiming a queued job (``queued → running`` under its row lock,
    so at most once), and is dropped only when nothing is queued on its device; while every
    queued job is held back by its tenant's limit it is kept (:class:`Deferred`). So there are
    always at least as many queue tickets as queued jobs. A redelivered ticket (its worker
    died before acknowledging it) or a duplicate is a spare one: it claims the next fair job,
    or finds nothing to do.

    Returns None when the ticket has nothing to do (unknown job, nothing queued on its
    device, nothing to take over, or the claimed job was refused for billing). Raises
    :class:`Deferred` when queued jobs exist but every one's tenant is at its concurrency
    limit (queue tickets only).
    """
    now = timezone.now()
    with transaction.atomic():
        # The one unscoped read of a task: the job row is what tells us the tenant and device.
        every = TrainingJob.objects.unscoped_all_tenants()
        if takeover:
            # SKIP LOCKED: a row another worker is claiming or finishing right now is not
            # stale; the reaper's next ticket looks again.
            named = every.select_for_update(skip_locked=True).filter(pk=job_id).first()
            if named is None or named.status != Status.RUNNING or not stale(named, now):
                return None
            return _take_over(named, now)
        device = every.filter(pk=job_id).values_list("device", flat=True).first()
        if device is None:
            return None
        return _claim_fairest(device=device, now=now)


def _take_over(job: TrainingJob, now: datetime) -> JobStart | None:
    """A running job whose heartbeat went stale (its worker died): cancel it if asked, fail it
    ``worker_lost`` (not billed) once its attempts are spent, else start the next attempt."""
    if job.cancel_requested_at is not None:
        finish(job, Status.CANCELLED)
        event(job, "cancelled", "Cancelled before the worker resumed it")
        return None
    cap = settings.TRAINYARD_TRAINING_MAX_ATTEMPTS
    if job.attempt >= cap:
        message = (
            f"The worker running this job stopped responding {job.attempt} times (killed, out "
            "of memory or lost); the job was given up and is not billed."
        )
        # A platform fault: no usage event, and the job's usage says so.
        finish(
            job,
            Status.FAILED,
            error={"code": "worker_lost", "message": message},
            usage=JobUsage.not_billed().with_reason("worker_lost").to_dict(),
        )
        event(job, "failed", message, code="worker_lost", attempts=job.attempt)
        return None
    return _begin_attempt(job, now, resumed=True)


def _fair_candidates(*, device: str, now: datetime, excluded: set[str]) -> QuerySet[TrainingJob]:
    """Queued jobs on ``device``, fairest first (see :func:`training_job_start`), unlocked."""
    window = now - timedelta(seconds=settings.TRAINYARD_FAIR_SHARE_WINDOW_SECONDS)
    every = TrainingJob.objects.unscoped_all_tenants()  # the scheduler ranks every tenant
    org_running = every.filter(organization_id=OuterRef("organization_id"), status=Status.RUNNING)
    org_recent = every.filter(organization_id=OuterRef("organization_id"), started_at__gte=window)
    # The plan's running-job limit, the column plan_limits_get reads, so that a tenant at its
    # limit is skipped in SQL without locking its rows (the claim re-checks under the lock).
    limit = (
        BillingAccount.objects.unscoped_all_tenants()
        .filter(organization_id=OuterRef("organization_id"))
        .values("plan__max_running_jobs")[:1]
    )
    return (
        every.filter(status=Status.QUEUED, device=device)
        .exclude(organization_id__in=excluded)
        .annotate(
            fair_running=Coalesce(_count(org_running), 0),
            fair_recent=Coalesce(_count(org_recent), 0),
            # No account: not skipped here, so the claim raises as plan_limits_get does.
            fair_limit=Coalesce(Subquery(limit, output_field=IntegerField()), 2**31 - 1),
        )
        .filter(fair_running__lt=F("fair_limit"))
        .order_by("fair_running", "fair_recent", "created_at", "pk")
    )


def _count(queryset: QuerySet[TrainingJob]) -> Subquery:
    return Subquery(
        queryset.order_by().values("organization_id").annotate(n=Count("pk")).values("n"),
        output_field=IntegerField(),
    )


def _claim_fairest(*, device: str, now: datetime) -> JobStart | None:
    """Lock and start the fairest queued job on ``device`` whose tenant is below its limit."""
    excluded: set[str] = set()
    # Each pass either claims a job or excludes one more tenant, so this ends.
    while True:
        job = (
            _fair_candidates(device=device, now=now, excluded=excluded)
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if job is None:
            break
        # The organisation's lock serialises the limit check with concurrent claims of the
        # same tenant's jobs and with billing_plan_change, which takes it too.
        org = Organization.objects.select_for_update().get(pk=job.organization_id)
        running = TrainingJob.objects.for_tenant(org.pk).filter(status=Status.RUNNING).count()
        if running >= plan_limits_get(organization=org).max_running_jobs:
            excluded.add(org.pk)
            continue
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
            return None  # this ticket ended one queued job: the count of tickets still holds
        return _begin_attempt(job, now, resumed=False)
    # Nothing claimable. Keep the ticket while anything is queued on the device (blocked by
    # tenant limits, or locked by a claim in flight that may yet give it back).
    if (
        TrainingJob.objects.unscoped_all_tenants()
        .filter(status=Status.QUEUED, device=device)
        .exists()
    ):
        raise Deferred()
    return None


def _begin_attempt(job: TrainingJob, now: datetime, *, resumed: bool) -> JobStart:
    """Move the locked ``job`` to ``running`` as a new attempt and say what to run; a taken
    over job resumes from its checkpoint when it has one."""
    checkpoint = job.checkpoint if resumed else None
    resume_epoch = int(checkpoint["epoch"]) if checkpoint else 0
    job.status = Status.RUNNING
    job.attempt += 1
    job.heartbeat_at = now
    job.started_at = job.started_at or now
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        status=job.status,
        attempt=job.attempt,
        heartbeat_at=now,
        started_at=job.started_at,
        epoch=resume_epoch,
    )
    if not resumed:
        event(job, "started", "Started", attempt=job.attempt)
    elif checkpoint:
        event(
            job,
            "started",
            f"Resumed from epoch {resume_epoch} after the previous worker stopped responding",
            attempt=job.attempt,
            resumed_from_epoch=resume_epoch,
        )
    else:
        event(
            job,
            "started",
            "Restarted after the previous worker stopped responding",
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
        resume_epoch=resume_epoch,
        checkpoint_key=checkpoint["key"] if checkpoint else None,
        resumed_seconds=float(checkpoint["seconds"]) if checkpoint else 0.0,
    )


def attempt_workdir(start: JobStart) -> Path:
    """A fresh local scratch directory for one attempt (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix=f"trainyard-{start.job_id}-a{start.attempt}-"))


def remove_workdir(path: Path) -> None:
    """Remove an attempt's scratch directory (missing is fine)."""
    shutil.rmtree(path, ignore_errors=True)
