"""Worker side, when an attempt ends: succeeded, stopped by a cancel, or failed — with its usage.

Each is one transaction: lock the job's row, check the attempt is still the current one, then
record the outcome, its usage events and its final :class:`~saas.jobs.usage.JobUsage`. They
are system transitions (the job's creator is on its row), so they take no actor.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from saas.billing.pricing import compute_cost
from saas.billing.services import training_charge
from saas.common.ids import new_id
from saas.contract.spec import TrainResult
from saas.metering.models import Meter, compute_meter_for
from saas.metering.services import usage_record
from saas.registry.services import model_artifact_delete, model_artifact_store, model_register

from ..models import TrainingJob
from ..usage import JobUsage
from ._common import Status, event, finish, lock_attempt
from .start import JobStart


def _record_training_usage(
    job: TrainingJob, usage: JobUsage, *, reason: str, model_id: str | None
) -> JobUsage:
    """Write the job's usage events and return ``usage`` with its final charge (priced exactly
    as its invoice lines will be: ``saas.billing.services.training_charge``)."""
    assert isinstance(usage.wall_seconds, int | float)  # a measured usage (see JobUsage.measured)
    assert isinstance(usage.examples_processed, int) and isinstance(usage.device, str)
    seconds = Decimal(str(usage.wall_seconds))
    examples = Decimal(usage.examples_processed)
    # GPU time is sold on its own meter (it costs the operator 40× a CPU second); the device
    # is the one the attempt measured itself running on.
    compute_meter = compute_meter_for(usage.device)
    charge, lines, now = training_charge(
        organization_id=job.organization_id,
        quantities={compute_meter: seconds, Meter.TRAINING_EXAMPLES: examples},
    )
    common: dict[str, Any] = {
        "organization_id": job.organization_id,
        "occurred_at": now,
        "source_type": "training_job",
        "source_id": job.id,
        "api_key_id": job.created_by_key_id,
        "model_id": model_id,
    }
    usage_record(
        meter=compute_meter,
        quantity=seconds,
        compute_cost=compute_cost(seconds=seconds, device=usage.device, day=now.date()),
        dimensions={
            "device": usage.device,
            "cpu_seconds": usage.cpu_seconds,
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
    return usage.priced(charge=charge, lines=lines)


def _with_resumed(resources: dict[str, Any], start: JobStart) -> dict[str, Any]:
    """``resources`` plus the billable seconds of the earlier attempts through the checkpoint
    this attempt resumed from (0 for a fresh attempt): each epoch is billed once (the rule is
    in :mod:`.checkpoints`)."""
    if not start.resumed_seconds:
        return resources
    return {**resources, "wall_seconds": resources["wall_seconds"] + start.resumed_seconds}


def _current(job: TrainingJob | None, start: JobStart) -> bool:
    return job is not None and job.attempt == start.attempt and job.status == Status.RUNNING


def training_job_complete(
    *, start: JobStart, result: TrainResult, resources: dict[str, Any]
) -> bool:
    """Worker side: store the model and mark the attempt ``succeeded``, exactly once.

    ``result`` is a ``saas.contract.TrainResult``; ``resources`` has ``wall_seconds``,
    ``cpu_seconds``, ``device`` and ``peak_rss_bytes``. The artifact is uploaded first, then
    one transaction creates the TrainedModel, writes the usage events and marks the job
    succeeded; if the attempt is no longer current (cancelled, taken over) the upload is
    deleted and False is returned.
    """
    model_id = new_id("mdl")
    artifact = model_artifact_store(
        organization_id=start.organization_id,
        model_id=model_id,
        saved_model_dir=result.saved_model_dir,
    )
    with transaction.atomic():
        job = lock_attempt(organization_id=start.organization_id, job_id=start.job_id)
        if job is None or not _current(job, start) or job.cancel_requested_at:
            transaction.on_commit(lambda: model_artifact_delete(key=artifact.key))
            return False
        usage = JobUsage().measured(
            resources=_with_resumed(resources, start),
            examples=result.examples_processed,
            reason="completed",
        )
        model_register(
            model_id=model_id,
            organization_id=job.organization_id,
            job_id=job.pk,
            task=job.task,
            base_model=job.base_model,
            classes=result.classes,
            metrics=result.metrics,
            artifact=artifact,
        )
        usage = _record_training_usage(job, usage, reason="completed", model_id=model_id)
        finish(
            job,
            Status.SUCCEEDED,
            metrics=result.metrics,
            misclassified=result.misclassified,
            usage=usage.to_dict(),
            epoch=result.epochs_completed,
        )
        event(
            job,
            "succeeded",
            f"Model {model_id} is ready",
            model=model_id,
            accuracy=result.metrics.get("accuracy"),
            macro_f1=result.metrics.get("macro_f1"),
        )
    return True


def training_job_stopped(
    *, start: JobStart, resources: dict, examples: int, exhausted: str | None = None
) -> None:
    """Worker side: the runner stopped early. Mark ``cancelled`` if the user asked for it.

    Compute used before a user's cancel is recorded (billing reason ``cancelled_by_user``).
    ``exhausted`` is set when the monitor stopped the job because the organisation's quota or
    spend cap ran out (:meth:`JobMonitor.should_stop`; the message saying which): the job is
    ``failed`` with code ``quota_exhausted`` and the compute used is billed (billing reason
    ``quota_exhausted``), unless the user's cancel came first. If the attempt was superseded
    by another, nothing is written.
    """
    with transaction.atomic():
        job = lock_attempt(organization_id=start.organization_id, job_id=start.job_id)
        if job is None or not _current(job, start):
            return
        if exhausted is not None and job.cancel_requested_at is None:
            _fail_billed(
                job,
                _with_resumed(resources, start),
                examples,
                code="quota_exhausted",
                message=exhausted,
            )
            return
        usage = JobUsage().measured(
            resources=_with_resumed(resources, start), examples=examples, reason="cancelled_by_user"
        )
        usage = _record_training_usage(job, usage, reason="cancelled_by_user", model_id=None)
        finish(job, Status.CANCELLED, usage=usage.to_dict())
        event(job, "cancelled", "Stopped by the user's cancel request")


def _examples_done(job: TrainingJob) -> int:
    """Training examples the job's completed epochs processed (``job.epoch`` × its training
    split), for a stop that interrupted the runner before it could say (Celery's soft limit).

    The training split as ``workers.ml.splits.grouped_stratified_split`` draws it for
    duplicate-free data: each class keeps all but ``max(1, floor(validation_split × n))`` of
    its ``n`` examples (with copies it holds out whole groups, so this is then approximate).
    """
    share = float(job.hyperparameters.get("validation_split", 0))
    train = sum(
        n - max(1, math.floor(n * share)) if share > 0 else n
        for n in (job.dataset.classes or {}).values()
    )
    return max(0, train) * job.epoch


def _fail_billed(
    job: TrainingJob, resources: dict, examples: int, *, code: str, message: str
) -> None:
    """Fail the locked job with ``code``, billing the compute it used (reason = ``code``)."""
    usage = JobUsage.from_dict(job.usage).measured(
        resources=resources, examples=examples, reason=code
    )
    usage = _record_training_usage(job, usage, reason=code, model_id=None)
    finish(
        job, Status.FAILED, error={"code": code, "message": message[:2000]}, usage=usage.to_dict()
    )
    event(job, "failed", message[:500], code=code)


def training_job_time_limited(
    *, start: JobStart, resources: dict, examples: int | None = None
) -> None:
    """Worker side: the training time limit stopped the attempt (the monitor's
    ``TRAINYARD_TRAINING_STOP_SECONDS`` between batches, or Celery's soft limit as backstop).

    The job is ``failed`` with code ``time_limit`` and its compute is billed (billing reason
    ``time_limit``): the tenant chose a job that long, so it is not the platform's loss (left
    unbilled, a free tenant could train for hours again and again). ``resources`` as for
    :func:`training_job_complete` (empty when the limit struck before measuring began); the
    examples billed are ``examples`` (the runner's count, when it stopped between batches), else
    those of the epochs completed (:func:`_examples_done`).
    Nothing is written if the attempt is no longer current.
    """
    with transaction.atomic():
        job = lock_attempt(organization_id=start.organization_id, job_id=start.job_id)
        if job is None or not _current(job, start):
            return
        limit = settings.TRAINYARD_TRAINING_STOP_SECONDS
        # Stopped before the measurement began (still copying the dataset): nothing to bill.
        resources = resources or {"wall_seconds": 0.0, "cpu_seconds": 0.0, "device": job.device}
        _fail_billed(
            job,
            _with_resumed(resources, start),
            _examples_done(job) if examples is None else examples,
            code="time_limit",
            message=f"Training ran past the {limit} s time limit after {job.epoch} epochs; "
            "the compute used is billed. Train fewer epochs or less data.",
        )


def training_job_fail(
    *, start: JobStart, code: str, message: str, resources: dict | None = None
) -> None:
    """Worker side: mark the attempt ``failed`` with ``error = {"code", "message"}``.

    ``code`` is ``input`` (the data could not be trained on: the compute used is billed, like
    a user's cancel) or ``platform`` (our fault: not billed). A time limit is
    :func:`training_job_time_limited`. Nothing is written if the attempt is no longer current.
    """
    with transaction.atomic():
        job = lock_attempt(organization_id=start.organization_id, job_id=start.job_id)
        if job is None or not _current(job, start):
            return
        reason = "failed_input" if code == "input" else "failed_platform"
        billed = code == "input" and resources is not None
        # Keeps what the last epoch recorded (cost_so_far, seconds_so_far) under the outcome.
        usage = JobUsage.from_dict(job.usage)
        if resources:
            usage = usage.measured(
                resources=_with_resumed(resources, start), examples=0, reason=reason, billed=billed
            )
        usage = usage.with_reason(reason)
        if billed:
            usage = _record_training_usage(job, usage, reason="failed_input", model_id=None)
        finish(
            job,
            Status.FAILED,
            error={"code": code, "message": message[:2000]},
            usage=usage.to_dict(),
        )
        event(job, "failed", message[:500], code=code)
