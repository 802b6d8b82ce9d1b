"""An operator's retry of a job that failed or was cancelled: a fresh job with the same inputs.

The retry is a new submission, not a reset of the old row: it goes through
:func:`~.create.training_job_create`, so the plan's active-job limit, the quotas, the spend caps
and the ``training_job.created`` audit apply exactly as for a job the tenant submits, and the
old job keeps its outcome (error, usage, timeline) as history.
"""

from __future__ import annotations

from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import Conflict, ValidationFailed
from saas.datasets.models import Dataset
from saas.tenancy.access import OrganizationSuspended
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from ..models import TrainingJob
from ._common import Status
from .create import training_job_create

RETRYABLE_STATUSES = (Status.FAILED, Status.CANCELLED)


@transaction.atomic
def training_job_retry(*, job: TrainingJob, actor: Actor, reason: str) -> TrainingJob:
    """Create a fresh ``queued`` job with ``job``'s organisation, dataset, base model,
    hyperparameters, seed and device, recording ``retry_of=job``.

    ``actor`` (the staff operator, in the console) is the new job's creator; ``reason`` (the
    operator's words, at most 500 characters kept) goes into the ``training_job.retried`` audit
    event with both job ids, in the same transaction as the new job.

    A job is retried once: a second retry of the same job is a Conflict naming the first
    retry (a double-click must not queue two jobs); retry the new job if that one failed too.

    Raises:
        ValidationFailed: an empty ``reason`` (400), or what ``training_job_create`` refuses
            about the stored inputs (a base model this deployment no longer offers).
        Conflict: ``job`` is not failed or cancelled, was already retried, or its dataset
            has been deleted (409).
        PaymentRequired, TooManyJobs: as :func:`~.create.training_job_create` (402, 429).
    """
    reason = reason.strip()[:500]
    if not reason:
        raise ValidationFailed(
            "A reason is required.", errors=[{"field": "reason", "message": "required"}]
        )
    scoped = TrainingJob.objects.for_tenant(job.organization_id)
    # The old row's lock serialises two retries of the same job, so the check below holds.
    locked = scoped.select_for_update().get(pk=job.pk)
    if locked.status not in RETRYABLE_STATUSES:
        raise Conflict(
            f"The job is {locked.status}; only failed or cancelled jobs can be retried.",
            status_now=locked.status,
        )
    earlier = scoped.filter(retry_of_id=locked.pk).values_list("pk", flat=True).first()
    if earlier is not None:
        raise Conflict(
            f"The job was already retried as {earlier}; retry that job instead.",
            retried_as=earlier,
        )
    # FOR NO KEY UPDATE: it waits for (and then sees) a concurrent dataset_delete, which takes
    # FOR UPDATE, but not for a submission inserting a job that references the dataset (FOR
    # KEY SHARE), which would deadlock against the organisation lock taken next.
    dataset = (
        Dataset.objects.for_tenant(locked.organization_id)
        .select_for_update(no_key=True)
        .filter(pk=locked.dataset_id)
        .first()
    )
    if dataset is None or dataset.status == Dataset.Status.DELETED:
        raise Conflict(
            f"The job's dataset {locked.dataset_id} has been deleted; the job cannot be retried.",
            dataset=locked.dataset_id,
        )
    organization = Organization.objects.get(pk=locked.organization_id)
    if organization.status == Organization.Status.SUSPENDED:
        # The tenant itself may not train now (saas.tenancy.access); nor may a retry on its
        # behalf: reactivate the organisation first.
        raise OrganizationSuspended(
            "The organisation is suspended: reactivate it before retrying its jobs."
        )
    new = training_job_create(
        organization=organization,
        dataset=dataset,
        actor=actor,
        base_model=locked.base_model,
        hyperparameters=locked.hyperparameters,
        seed=locked.seed,
        device=locked.device,
        retry_of=locked,
    )
    audit_record(
        organization_id=locked.organization_id,
        action="training_job.retried",
        actor=actor,
        target_type="training_job",
        target_id=new.pk,
        retry_of=locked.pk,
        status_was=locked.status,
        reason=reason,
    )
    return new
