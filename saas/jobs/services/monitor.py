"""Worker side, while an attempt trains: stop checks, heartbeats and per-epoch progress."""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from saas.billing.services import job_charge

from ..models import TrainingJob
from ..usage import JobUsage
from ._common import Status, event
from .start import JobStart


class JobMonitor:
    """Worker side, per attempt: answers "should training stop?" and keeps the heartbeat fresh.

    ``should_stop()`` re-reads the job's row (one indexed query) before every batch; it is
    True when the job was cancelled, or when another attempt took the job over. The heartbeat
    is written at most every ``heartbeat_every`` seconds. Every write is conditional on the
    attempt still being current.
    """

    def __init__(self, start: JobStart, heartbeat_every: float = 2.0) -> None:
        self.start = start
        self.heartbeat_every = heartbeat_every
        self._last_beat = timezone.now()
        self._t0 = time.monotonic()
        self._examples_per_epoch: int | None = None

    def _qs(self) -> QuerySet[TrainingJob]:
        return TrainingJob.objects.for_tenant(self.start.organization_id).filter(
            pk=self.start.job_id
        )

    def should_stop(self) -> bool:
        """True when this attempt must stop (cancelled, superseded, or no longer running)."""
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
                    usage=JobUsage.running(cost_so_far=cost, seconds_so_far=elapsed).to_dict(),
                )
            )
            if updated:
                job = self._qs().only("id", "organization_id").get()
                clean = {k: round(float(v), 6) for k, v in logs.items() if v is not None}
                event(
                    job,
                    "epoch",
                    f"Epoch {epoch}/{start.hyperparameters['epochs']}",
                    epoch=epoch,
                    cost_so_far=str(cost),
                    **clean,
                )
