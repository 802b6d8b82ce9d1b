"""Helpers shared by the job transitions: the timeline, enqueueing, the terminal update."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from saas.billing.services import quota_release
from saas.celery import TaskName, app, training_queue

from ..models import JobEvent, TrainingJob

Status = TrainingJob.Status


def event(job: TrainingJob, type_: str, message: str = "", **data: Any) -> None:
    """Append one line to the job's timeline (inside the caller's transaction)."""
    JobEvent.objects.for_tenant(job.organization_id).create(
        organization_id=job.organization_id, job=job, type=type_, message=message, data=data
    )


def enqueue(job: TrainingJob) -> None:
    """Send the job's train task to its device queue once the transaction commits."""
    job_id, queue = job.id, training_queue(job.device).value
    transaction.on_commit(
        lambda: app.send_task(TaskName.TRAIN, kwargs={"job_id": job_id}, queue=queue)
    )


def stale(job: TrainingJob, now: datetime) -> bool:
    """True when the job's heartbeat is older than ``TRAINYARD_HEARTBEAT_STALE_SECONDS``."""
    limit = timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS)
    return job.heartbeat_at is None or now - job.heartbeat_at > limit


def finish(job: TrainingJob, status: str, **fields: Any) -> None:
    """Move the (already locked and checked) job to a terminal ``status``, releasing the quota
    its submission reserved (in the same transaction as its usage events, if any); its training
    checkpoint, if any, is deleted from storage once the transaction commits."""
    now = timezone.now()
    TrainingJob.objects.for_tenant(job.organization_id).filter(pk=job.pk).update(
        status=status, finished_at=now, heartbeat_at=now, checkpoint=None, **fields
    )
    quota_release(organization_id=job.organization_id, source_type="training_job", source_id=job.pk)
    key = (job.checkpoint or {}).get("key")
    if key:
        transaction.on_commit(lambda: stored_delete(key))


def stored_delete(key: str) -> None:
    """Delete a stored scratch object (a checkpoint); missing is fine, errors are logged:
    cleanup after an outcome is committed must never undo or fail it."""
    try:
        default_storage.delete(key)
    except Exception:
        logging.getLogger(__name__).warning("could not delete %s", key, exc_info=True)


def lock_attempt(*, organization_id: str, job_id: str) -> TrainingJob | None:
    """The job's row, locked (``select_for_update``) for the rest of the transaction."""
    return (
        TrainingJob.objects.for_tenant(organization_id)
        .select_for_update()
        .filter(pk=job_id)
        .first()
    )
