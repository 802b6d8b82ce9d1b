"""Worker side, while an attempt trains: stop checks, heartbeats and per-epoch progress."""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from saas.billing.services import job_charge, quota_exhausted
from saas.metering.models import compute_meter_for

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
        # Set by on_epoch when the organisation's quota or spend cap ran out (the 402's
        # message); should_stop() then stops the runner and the task fails the job
        # ``quota_exhausted`` (training_job_stopped(exhausted=...)).
        self.exhausted: str | None = None
        self._billing: tuple[str, str | None] | None = None  # (device, creating API key)

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
        return (
            cancel is not None
            or attempt != self.start.attempt
            or status != Status.RUNNING
            or self.exhausted is not None
        )

    def on_epoch(self, epoch: int, logs: dict) -> None:
        """Record an epoch's loss and accuracy in the timeline, the job's progress, and
        ``usage.cost_so_far`` (the compute used so far at the marginal list price); then check
        the compute used against what is left of the quota and spend caps (see
        :meth:`_check_budget`)."""
        start = self.start
        elapsed = Decimal(str(round(time.monotonic() - self._t0, 3)))
        if self._billing is None:
            row = self._qs().values_list("device", "created_by_key_id").first()
            self._billing = row if row is not None else ("cpu", None)
        device, api_key_id = self._billing
        cost = job_charge(
            organization_id=start.organization_id,
            seconds=elapsed,
            examples=0,
            on=timezone.now().date(),
            device=device,
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
        self._check_budget(elapsed, device, api_key_id)

    def _check_budget(self, elapsed: Decimal, device: str, api_key_id: str | None) -> None:
        """Billing's part of an epoch, kept apart from the progress and heartbeat: once the
        compute used so far reaches what the organisation has left (hard quota of its device's
        meter, its spend cap, the creating key's cap; other jobs' reservations counted),
        :attr:`exhausted` is set and the next ``should_stop()`` stops the runner."""
        if self.exhausted is not None:
            return
        refused = quota_exhausted(
            organization_id=self.start.organization_id,
            source_type="training_job",
            source_id=self.start.job_id,
            quantities={compute_meter_for(device): elapsed},
            api_key_id=api_key_id,
        )
        if refused is not None:
            self.exhausted = refused.detail
