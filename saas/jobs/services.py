"""The training job state machine: create, start (worker), progress, complete, fail, cancel.

Every transition is a row lock (``select_for_update``) plus a check of the current status, so
a redelivered Celery message, a second worker or a late cancel can never move a job backwards
or record a result twice.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from saas.billing.pricing import compute_cost
from saas.billing.services import (
    PaymentRequired,
    billing_check,
    job_charge,
    training_charge,
    training_estimate,
)
from saas.celery import TaskName, app, training_queue
from saas.common.actor import Actor
from saas.common.errors import Conflict, DomainError, ValidationFailed
from saas.datasets.models import Dataset
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.registry.services import model_artifact_delete, model_artifact_store
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization
from saas.tenancy.plans import plan_limits

from . import hyperparameters as hp
from .models import JobEvent, TrainingJob

log = logging.getLogger(__name__)
Status = TrainingJob.Status


def _event(job: TrainingJob, type_: str, message: str = "", **data) -> None:
    JobEvent.objects.for_tenant(job.organization_id).create(
        organization_id=job.organization_id, job=job, type=type_, message=message, data=data
    )


def _enqueue(job: TrainingJob) -> None:
    job_id, queue = job.id, training_queue(job.device).value
    transaction.on_commit(
        lambda: app.send_task(TaskName.TRAIN, kwargs={"job_id": job_id}, queue=queue)
    )


@transaction.atomic
def training_job_create(
    *,
    organization: Organization,
    dataset: Dataset,
    base_model: str | None = None,
    hyperparameters: dict | None = None,
    seed: int = 0,
    device: str = "cpu",
    api_key=None,
) -> TrainingJob:
    """Create a ``queued`` job and enqueue it after the transaction commits.

    ``dataset`` must already be resolved through the tenant-scoped selector. Raises
    ValidationFailed for an unusable base model, hyperparameters or device.
    """
    if device not in ("cpu", "gpu"):
        raise ValidationFailed(
            "Unknown device.", errors=[{"field": "device", "message": "must be 'cpu' or 'gpu'"}]
        )
    base_model, params = hp.resolve(
        task=dataset.task, base_model=base_model, hyperparameters=hyperparameters
    )
    _check_split(dataset, params["validation_split"])
    billing_check(
        organization=organization,
        meter=Meter.TRAINING_COMPUTE_SECONDS,
        quantity=Decimal(0),
        api_key=api_key,
    )
    # Serialise submissions per organisation so two concurrent requests cannot both pass the cap.
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    cap = plan_limits(org.plan)["max_active_jobs"]
    active = (
        TrainingJob.objects.for_tenant(org).filter(status__in=TrainingJob.ACTIVE_STATUSES).count()
    )
    if active >= cap:
        raise TooManyJobs(
            f"Your organisation has {active} training jobs queued or running, the most its plan "
            f"({org.plan}) allows; wait for one to finish or cancel one.",
            limit=cap,
        )
    job = TrainingJob.objects.for_tenant(organization).create(
        organization=organization,
        dataset=dataset,
        task=dataset.task,
        base_model=base_model,
        hyperparameters=params,
        seed=seed,
        device=device,
        created_by_key=api_key,
    )
    _event(job, "created", f"Queued on {training_queue(device).value}")
    _enqueue(job)
    return job


def training_job_estimate(
    *,
    organization: Organization,
    dataset: Dataset,
    base_model: str | None,
    hyperparameters: dict | None,
    device: str = "cpu",
) -> dict:
    """What a job would cost, without creating anything (``"dry_run": true``).

    Validates exactly as :func:`training_job_create` does (same 400s), then returns
    ``{"object": "training_job.estimate", "estimated_seconds", "price": {"low", "high",
    "currency"}, "basis": {...}}`` — examples × epochs × measured seconds per example.
    """
    base_model, params = hp.resolve(
        task=dataset.task, base_model=base_model, hyperparameters=hyperparameters
    )
    _check_split(dataset, params["validation_split"])
    train_examples = dataset.num_examples - math.ceil(
        dataset.num_examples * params["validation_split"]
    )
    est = training_estimate(
        organization=organization,
        task=dataset.task,
        base_model=base_model,
        device=device,
        examples=train_examples,
        epochs=params["epochs"],
    )
    return {
        "object": "training_job.estimate",
        "dataset": dataset.pk,
        "base_model": base_model,
        "hyperparameters": params,
        "estimated_seconds": float(est.seconds),
        "price": {"low": str(est.low_price), "high": str(est.high_price), "currency": est.currency},
        "basis": est.basis,
    }


def _check_split(dataset: Dataset, validation_split: float) -> None:
    """A stratified split needs at least one example of every class on each side.

    scikit-learn's ``train_test_split`` takes ``ceil(n × split)`` examples for validation.
    """
    n, classes = dataset.num_examples, len(dataset.classes)
    n_val = math.ceil(n * validation_split)
    if n_val < classes or n - n_val < classes:
        raise ValidationFailed(
            f"A validation split of {validation_split} leaves {n_val} validation and {n - n_val} training "
            f"examples; each side needs at least one example of each of the {classes} classes.",
            errors=[
                {
                    "field": "hyperparameters.validation_split",
                    "message": f"needs ≥ {classes} examples on each side; add data or change the split",
                }
            ],
        )


class TooManyJobs(DomainError):
    status = 429
    code = "too-many-jobs"
    title = "Too many training jobs in flight"


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


def _stale(job: TrainingJob, now) -> bool:
    limit = timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS)
    return job.heartbeat_at is None or now - job.heartbeat_at > limit


def _finish(job: TrainingJob, status: str, **fields) -> None:
    now = timezone.now()
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        status=status, finished_at=now, heartbeat_at=now, **fields
    )


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
        if job.status == Status.RUNNING and not _stale(job, now):
            return None
        if job.cancel_requested_at is not None:
            _finish(job, Status.CANCELLED)
            _event(job, "cancelled", "Cancelled before the worker resumed it")
            return None
        if job.status == Status.QUEUED:
            org = Organization.objects.select_for_update().get(pk=job.organization_id)
            running = (
                TrainingJob.objects.for_tenant(job.organization_id)
                .filter(status=Status.RUNNING)
                .count()
            )
            if running >= plan_limits(org.plan)["max_running_jobs"]:
                raise Deferred(countdown=5.0)
        if job.status == Status.QUEUED:
            try:
                billing_check(
                    organization=org,
                    meter=Meter.TRAINING_COMPUTE_SECONDS,
                    quantity=Decimal(0),
                    api_key=job.created_by_key,
                )
            except PaymentRequired as refused:
                _finish(
                    job,
                    Status.FAILED,
                    error={"code": "payment_required", "message": refused.detail},
                    usage={
                        "billing_reason": "not_billed",
                        "charge": "0.00",
                        "billable_seconds": 0.0,
                    },
                )
                _event(job, "failed", refused.detail, code="payment_required")
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
        _event(
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


class JobMonitor:
    """Worker side, per attempt: answers "should training stop?" and keeps the heartbeat fresh.

    ``should_stop()`` re-reads the job's row (one indexed query) before every batch; it is
    True when the job was cancelled, or when another attempt took the job over. The heartbeat
    is written at most every ``heartbeat_every`` seconds.
    """

    def __init__(self, start: JobStart, heartbeat_every: float = 2.0) -> None:
        self.start = start
        self.heartbeat_every = heartbeat_every
        self._last_beat = timezone.now()
        self._t0 = time.monotonic()
        self._examples_per_epoch: int | None = None

    def _qs(self):
        return TrainingJob.objects.for_tenant(self.start.organization_id).filter(
            pk=self.start.job_id
        )

    def should_stop(self) -> bool:
        row = self._qs().values_list("status", "attempt", "cancel_requested_at").first()
        if row is None:
            return True
        status, attempt, cancel = row
        now = timezone.now()
        if (now - self._last_beat).total_seconds() >= self.heartbeat_every:
            self._qs().filter(attempt=self.start.attempt).update(heartbeat_at=now)
            self._last_beat = now
        return cancel is not None or attempt != self.start.attempt or status != Status.RUNNING

    def on_epoch(self, epoch: int, logs: dict) -> None:
        """Record an epoch's loss and accuracy in the timeline, the job's progress, and
        ``usage.cost_so_far`` (the compute used so far at the marginal list price)."""
        start = self.start
        elapsed = Decimal(str(round(time.monotonic() - self._t0, 3)))
        cost = job_charge(
            organization_id=start.organization_id,
            seconds=elapsed,
            examples=0,
            on=timezone.now().date(),
        )
        with transaction.atomic():
            updated = (
                self._qs()
                .filter(attempt=start.attempt, status=Status.RUNNING)
                .update(
                    epoch=epoch,
                    heartbeat_at=timezone.now(),
                    usage={
                        "cost_so_far": str(cost),
                        "seconds_so_far": float(elapsed),
                        "billing_reason": None,
                    },
                )
            )
            if updated:
                job = self._qs().only("id", "organization_id").get()
                clean = {k: round(float(v), 6) for k, v in logs.items() if v is not None}
                _event(
                    job,
                    "epoch",
                    f"Epoch {epoch}/{start.hyperparameters['epochs']}",
                    epoch=epoch,
                    cost_so_far=str(cost),
                    **clean,
                )


def _usage_fields(resources: dict, examples: int, *, billed: bool = True) -> dict:
    """The job's ``usage``; ``charge`` is filled in by :func:`_record_training_usage`."""
    return {
        "billable_seconds": round(resources["wall_seconds"], 3) if billed else 0.0,
        "charge": "0.00",
        "cost_so_far": "0.00",
        "wall_seconds": round(resources["wall_seconds"], 3),
        "cpu_seconds": round(resources["cpu_seconds"], 3),
        "examples_processed": examples,
        "device": resources["device"],
        "peak_memory_bytes": resources.get("peak_rss_bytes"),
    }


def _record_training_usage(
    job: TrainingJob, usage: dict, *, reason: str, model_id: str | None
) -> None:
    """Write the job's usage events and put its final charge in ``usage`` (priced exactly as
    its invoice lines will be: ``saas.billing.services.training_charge``)."""
    seconds = Decimal(str(usage["wall_seconds"]))
    examples = Decimal(usage["examples_processed"])
    charge, lines, now = training_charge(
        organization_id=job.organization_id,
        quantities={Meter.TRAINING_COMPUTE_SECONDS: seconds, Meter.TRAINING_EXAMPLES: examples},
    )
    usage.update(charge=str(charge), cost_so_far=str(charge), charge_lines=lines)
    common = {
        "organization_id": job.organization_id,
        "occurred_at": now,
        "source_type": "training_job",
        "source_id": job.id,
        "api_key_id": job.created_by_key_id,
        "model_id": model_id,
    }
    usage_record(
        meter=Meter.TRAINING_COMPUTE_SECONDS,
        quantity=seconds,
        compute_cost=compute_cost(seconds=seconds, device=usage["device"], day=now.date()),
        dimensions={
            "device": usage["device"],
            "cpu_seconds": usage["cpu_seconds"],
            "billing_reason": reason,
        },
        **common,
    )
    usage_record(
        meter=Meter.TRAINING_EXAMPLES,
        quantity=examples,
        dimensions={"billing_reason": reason},
        **common,
    )


def training_job_complete(*, start: JobStart, result, resources: dict) -> bool:
    """Worker side: store the model and mark the attempt ``succeeded``, exactly once.

    ``result`` is a ``saas.contract.TrainResult``; ``resources`` has ``wall_seconds``,
    ``cpu_seconds``, ``device`` and ``peak_rss_bytes``. The artifact is uploaded first, then
    one transaction creates the TrainedModel, writes the usage events and marks the job
    succeeded; if the attempt is no longer current (cancelled, taken over) the upload is
    deleted and False is returned.
    """
    from saas.common.ids import new_id
    from saas.registry.models import TrainedModel

    model_id = new_id("mdl")
    artifact = model_artifact_store(
        organization_id=start.organization_id,
        model_id=model_id,
        saved_model_dir=result.saved_model_dir,
    )
    with transaction.atomic():
        job = (
            TrainingJob.objects.for_tenant(start.organization_id)
            .select_for_update()
            .filter(pk=start.job_id)
            .first()
        )
        if (
            job is None
            or job.status != Status.RUNNING
            or job.attempt != start.attempt
            or job.cancel_requested_at
        ):
            transaction.on_commit(lambda: model_artifact_delete(key=artifact.key))
            return False
        usage = _usage_fields(resources, result.examples_processed)
        usage["billing_reason"] = "completed"
        TrainedModel.objects.for_tenant(job.organization_id).create(
            id=model_id,
            organization_id=job.organization_id,
            job=job,
            task=job.task,
            base_model=job.base_model,
            classes=result.classes,
            metrics=result.metrics,
            artifact_key=artifact.key,
            artifact_bytes=artifact.size,
            artifact_sha256=artifact.sha256,
        )
        _record_training_usage(job, usage, reason="completed", model_id=model_id)
        _finish(
            job,
            Status.SUCCEEDED,
            metrics=result.metrics,
            misclassified=result.misclassified,
            usage=usage,
            epoch=result.epochs_completed,
        )
        _event(
            job,
            "succeeded",
            f"Model {model_id} is ready",
            model=model_id,
            accuracy=result.metrics.get("accuracy"),
            macro_f1=result.metrics.get("macro_f1"),
        )
    return True


def training_job_stopped(*, start: JobStart, resources: dict, examples: int) -> None:
    """Worker side: the runner stopped early. Mark ``cancelled`` if the user asked for it.

    Compute used before a user's cancel is recorded (billing reason ``cancelled_by_user``). If
    the attempt was superseded by another, nothing is written.
    """
    with transaction.atomic():
        job = (
            TrainingJob.objects.for_tenant(start.organization_id)
            .select_for_update()
            .filter(pk=start.job_id)
            .first()
        )
        if job is None or job.attempt != start.attempt or job.status != Status.RUNNING:
            return
        usage = _usage_fields(resources, examples)
        usage["billing_reason"] = "cancelled_by_user"
        _record_training_usage(job, usage, reason="cancelled_by_user", model_id=None)
        _finish(job, Status.CANCELLED, usage=usage)
        _event(job, "cancelled", "Stopped by the user's cancel request")


def training_job_fail(
    *, start: JobStart, code: str, message: str, resources: dict | None = None
) -> None:
    """Worker side: mark the attempt ``failed`` with ``error = {"code", "message"}``.

    ``code`` is ``input`` (the data could not be trained on: the compute used is billed, like
    a user's cancel) or ``platform`` (our fault: not billed). Nothing is written if the attempt
    is no longer current.
    """
    with transaction.atomic():
        job = (
            TrainingJob.objects.for_tenant(start.organization_id)
            .select_for_update()
            .filter(pk=start.job_id)
            .first()
        )
        if job is None or job.attempt != start.attempt or job.status != Status.RUNNING:
            return
        usage = dict(job.usage or {})
        billed = code == "input" and resources is not None
        if resources:
            usage.update(_usage_fields(resources, 0, billed=billed))
        usage["billing_reason"] = "failed_input" if code == "input" else "failed_platform"
        if billed:
            _record_training_usage(job, usage, reason="failed_input", model_id=None)
        _finish(job, Status.FAILED, error={"code": code, "message": message[:2000]}, usage=usage)
        _event(job, "failed", message[:500], code=code)


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, actor: Actor | None = None) -> TrainingJob:
    """Cancel a queued job now, or ask a running one to stop within one batch.

    Raises Conflict for a job that already finished. Returns the job as it now stands.
    """
    locked = TrainingJob.objects.for_tenant(job.organization_id).select_for_update().get(pk=job.pk)
    if locked.status in TrainingJob.TERMINAL_STATUSES:
        raise Conflict(
            f"The job has already finished ({locked.status}); only queued or running jobs can be cancelled.",
            status_now=locked.status,
        )
    now = timezone.now()
    if locked.cancel_requested_at is None:
        fields: dict = {"cancel_requested_at": now}
        if locked.status == Status.QUEUED:
            fields.update(status=Status.CANCELLED, finished_at=now)
            locked.usage = {
                "billing_reason": "cancelled_by_user",
                "billable_seconds": 0.0,
                "charge": "0.00",
                "wall_seconds": 0,
                "cpu_seconds": 0,
                "examples_processed": 0,
                "device": locked.device,
            }
            fields["usage"] = locked.usage
        TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(**fields)
        audit_record(
            organization_id=job.organization_id,
            action="training_job.cancelled",
            actor=actor,
            target_type="training_job",
            target_id=job.pk,
            status_was=locked.status,
        )
        _event(
            locked,
            "cancel_requested" if locked.status == Status.RUNNING else "cancelled",
            "Cancel requested; the worker stops before its next batch"
            if locked.status == Status.RUNNING
            else "Cancelled while queued",
        )
    return TrainingJob.objects.for_tenant(job.organization_id).get(pk=job.pk)


def training_jobs_reap_stuck() -> list[str]:
    """Re-enqueue running jobs whose heartbeat went stale (their worker died).

    The redelivered task starts a new attempt (see :func:`training_job_start`). Returns the job
    ids re-enqueued. Run by Celery beat every ``TRAINYARD_REAPER_INTERVAL_SECONDS``.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS)
    stuck = list(
        TrainingJob.objects.unscoped_all_tenants()  # system task over every tenant
        .filter(status=Status.RUNNING, heartbeat_at__lt=cutoff)
        .values_list("id", "device")
    )
    for job_id, device in stuck:
        app.send_task(TaskName.TRAIN, kwargs={"job_id": job_id}, queue=training_queue(device).value)
    if stuck:
        log.warning("re-enqueued %d stuck training jobs: %s", len(stuck), [j for j, _ in stuck])
    return [j for j, _ in stuck]


def attempt_workdir(start: JobStart) -> Path:
    """A fresh local scratch directory for one attempt (removed by the caller)."""
    return Path(tempfile.mkdtemp(prefix=f"trainyard-{start.job_id}-a{start.attempt}-"))


def remove_workdir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
