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

    The redelivered task starts a new attempt (see
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
    for job_id, device in stuck:
        app.send_task(TaskName.TRAIN, kwargs={"job_id": job_id}, queue=training_queue(device).value)
    if stuck:
        log.warning("re-enqueued %d stuck training jobs: %s", len(stuck), [j for j, _ in stuck])
    return [j for j, _ in stuck]
