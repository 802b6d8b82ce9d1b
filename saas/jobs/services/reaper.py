"""The reaper: re-enqueue running jobs whose worker died (Celery beat)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from saas.celery import TaskName, app, training_queue

from ..models import TrainingJob

log = logging.getLogger(__name__)


def training_jobs_reap_stuck() -> list[str]:
    """Re-enqueue running jobs whose heartbeat went stale (their worker died).

    The re-sent task (a ticket naming the job) starts a new attempt, resumed from the job's
    last checkpoint, or fails it ``worker_lost`` once its attempts are spent (see
    :func:`saas.jobs.services.start.training_job_start`). Returns the job ids re-enqueued.
    Run by Celery beat every ``TRAINYARD_REAPER_INTERVAL_SECONDS``; a system task, so it takes
    no actor (it writes nothing: the new attempt is recorded by ``training_job_start``).
    """
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS)
    stuck = list(
        TrainingJob.objects.unscoped_all_tenants()  # system task over every tenant
        .filter(status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff)
        .values_list("id", "device")
    )
    # Each run sends a fresh ticket while the job stays stale, so an older one that waited behind
    # a long job on a busy slot is redundant: it expires instead of piling up (the creation
    # tickets of queued jobs never expire; see training_job_start).
    expires = 2 * float(settings.TRAINYARD_REAPER_INTERVAL_SECONDS)
    for job_id, device in stuck:
        app.send_task(
            TaskName.TRAIN,
            kwargs={"job_id": job_id, "takeover": True},
            queue=training_queue(device).value,
            expires=expires,
        )
    if stuck:
        log.warning("re-enqueued %d stuck training jobs: %s", len(stuck), [j for j, _ in stuck])
    return [j for j, _ in stuck]
