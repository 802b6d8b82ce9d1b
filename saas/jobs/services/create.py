"""Jobs the user starts and stops: create (with its dry-run estimate) and cancel.

Both are one transaction that records its actor: ``training_job.created`` and
``training_job.cancelled`` in the audit log, the creating user and API key on the row.
"""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone

from saas.billing.selectors import plan_limits_get
from saas.billing.services import quota_release, quota_reserve
from saas.celery import training_queue
from saas.common.actor import Actor
from saas.common.errors import Conflict, DomainError, ValidationFailed
from saas.datasets.models import Dataset
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .. import hyperparameters as hp
from ..estimates import Estimate, training_estimate
from ..models import TrainingJob
from ..usage import JobUsage
from ._common import Status, enqueue, event


class TooManyJobs(DomainError):
    status = 429
    code = "too-many-jobs"
    title = "Too many training jobs in flight"


@transaction.atomic
def training_job_create(
    *,
    organization: Organization,
    dataset: Dataset,
    actor: Actor,
    base_model: str | None = None,
    hyperparameters: dict | None = None,
    seed: int = 0,
    device: str = "cpu",
    retry_of: TrainingJob | None = None,
) -> TrainingJob:
    """Create a ``queued`` job and enqueue it after the transaction commits.

    ``dataset`` must already be resolved through the tenant-scoped selector. ``actor`` is
    stored on the job (``created_by``, ``created_by_key``) and in the audit log
    (``training_job.created``). The job's estimate (compute seconds on its device's meter,
    examples × epochs) is reserved against the plan's hard quotas and the organisation's and
    API key's monthly spend caps (``saas.billing.services.quota_reserve``) until it ends.
    ``retry_of`` is the job this one retries (only :func:`~.retry.training_job_retry` sets it).

    Raises:
        ValidationFailed: an unusable base model, hyperparameters, split or device (400).
        PaymentRequired: the estimate does not fit what is left of a quota (``meter`` named)
            or a spend cap (402).
        TooManyJobs: the plan's ``max_active_jobs`` are queued or running (429).
    """
    if device not in ("cpu", "gpu"):
        raise ValidationFailed(
            "Unknown device.", errors=[{"field": "device", "message": "must be 'cpu' or 'gpu'"}]
        )
    base_model, params = hp.resolve(
        task=dataset.task, base_model=base_model, hyperparameters=hyperparameters
    )
    _check_split(dataset, params["validation_split"])
    est = _estimate(organization, dataset, base_model, params, device)
    # Serialise submissions per organisation so two concurrent requests cannot both pass the cap.
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    limits = plan_limits_get(organization=org)  # under the lock billing_plan_change takes too
    cap = limits.max_active_jobs
    active = (
        TrainingJob.objects.for_tenant(org).filter(status__in=TrainingJob.ACTIVE_STATUSES).count()
    )
    if active >= cap:
        raise TooManyJobs(
            f"Your organisation has {active} training jobs queued or running, the most its plan "
            f"({limits.plan}) allows; wait for one to finish or cancel one.",
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
        created_by_key_id=actor.api_key_id,
        created_by_id=actor.user_id,
        retry_of=retry_of,
    )
    # The estimate is held against every quota and spend cap until the job ends (any terminal
    # status releases it); a 402 here rolls the job back. After the job's insert, under the
    # organisation's lock, so a racing submission sees this one's reservation.
    quota_reserve(
        organization=organization,
        source_type="training_job",
        source_id=job.pk,
        quantities=est.quantities,
        actor=actor,
    )
    audit_record(
        organization_id=organization.pk,
        action="training_job.created",
        actor=actor,
        target_type="training_job",
        target_id=job.pk,
        dataset=dataset.pk,
        base_model=base_model,
        device=device,
    )
    event(job, "created", f"Queued on {training_queue(device).value}")
    enqueue(job)
    return job


def training_job_estimate(
    *,
    organization: Organization,
    dataset: Dataset,
    base_model: str | None,
    hyperparameters: dict | None,
    device: str = "cpu",
    actor: Actor | None = None,
) -> dict:
    """What a job would cost, without creating anything (``"dry_run": true``; a read: nothing
    is written or audited).

    Validates and admits exactly as :func:`training_job_create` does (same 400s, and the same
    402 naming the meter when the estimate does not fit a quota or the spend caps of the
    organisation and of ``actor``'s API key), then returns
    ``{"object": "training_job.estimate", "estimated_seconds", "price": {"low", "high",
    "currency"}, "basis": {...}}`` — examples × epochs × measured seconds per example.
    """
    if device not in ("cpu", "gpu"):
        raise ValidationFailed(
            "Unknown device.", errors=[{"field": "device", "message": "must be 'cpu' or 'gpu'"}]
        )
    base_model, params = hp.resolve(
        task=dataset.task, base_model=base_model, hyperparameters=hyperparameters
    )
    _check_split(dataset, params["validation_split"])
    est = _estimate(organization, dataset, base_model, params, device)
    # The same admission as a real submission, without holding anything: a dry run that would
    # be refused is refused (402 naming the meter), not answered with a price.
    quota_reserve(
        organization=organization,
        source_type="training_job",
        source_id=None,
        quantities=est.quantities,
        actor=actor or Actor.system(),
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


def _estimate(
    organization: Organization, dataset: Dataset, base_model: str, params: dict, device: str
) -> Estimate:
    train_examples = dataset.num_examples - math.ceil(
        dataset.num_examples * params["validation_split"]
    )
    return training_estimate(
        organization=organization,
        task=dataset.task,
        base_model=base_model,
        device=device,
        examples=train_examples,
        epochs=params["epochs"],
    )


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


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, actor: Actor) -> TrainingJob:
    """Cancel a queued job now, or ask a running one to stop within one batch.

    Audited as ``training_job.cancelled`` with ``actor``. Raises Conflict for a job that
    already finished. Returns the job as it now stands.
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
            locked.usage = JobUsage.cancelled_while_queued(device=locked.device).to_dict()
            fields["usage"] = locked.usage
            quota_release(
                organization_id=job.organization_id, source_type="training_job", source_id=job.pk
            )
        TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(**fields)
        audit_record(
            organization_id=job.organization_id,
            action="training_job.cancelled",
            actor=actor,
            target_type="training_job",
            target_id=job.pk,
            status_was=locked.status,
        )
        event(
            locked,
            "cancel_requested" if locked.status == Status.RUNNING else "cancelled",
            "Cancel requested; the worker stops before its next batch"
            if locked.status == Status.RUNNING
            else "Cancelled while queued",
        )
    return TrainingJob.objects.for_tenant(job.organization_id).get(pk=job.pk)
