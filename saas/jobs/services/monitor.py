"""Worker side, while an attempt trains: stop checks, heartbeats and per-epoch progress."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from saas.billing.services import job_charge, quota_exhausted
from saas.metering.models import compute_meter_for

from ..models import TrainingJob
from ..usage import JobUsage
from ._common import Status, event
from .start import JobStart

log = logging.getLogger(__name__)


class JobMonitor:
    """Worker side, per attempt: answers "should training stop?" and keeps the heartbeat fresh.

    ``should_stop()`` re-reads the job's row (one indexed query) before every batch; it is
    True when the job was cancelled, or when another attempt took the job over. The heartbeat
    is written at most every ``heartbeat_every`` seconds, by ``should_stop`` and — through
    every phase, including those with no batches (a vocabulary ``adapt``, evaluation, export,
    a hub load) — by a daemon thread between :meth:`beat_start` and :meth:`beat_stop` (use
    the monitor as a context manager). Every write is conditional on the attempt still being
    current, so a superseded attempt's thread cannot keep the new attempt's job "alive".
    """

    def __init__(self, start: JobStart, heartbeat_every: float | None = None) -> None:
        self.start = start
        # Three beats fit in the stale limit, so one slow write never lets the reaper in.
        self.heartbeat_every = (
            heartbeat_every
            if heartbeat_every is not None
            else max(0.2, min(2.0, settings.TRAINYARD_HEARTBEAT_STALE_SECONDS / 3))
        )
        self._last_beat = timezone.now()
        self._t0 = time.monotonic()
        self._examples_per_epoch: int | None = None
        # Set by on_epoch when the organisation's quota or spend cap ran out (the 402's
        # message); should_stop() then stops the runner and the task fails the job
        # ``quota_exhausted`` (training_job_stopped(exhausted=...)).
        self.exhausted: str | None = None
        # Set by should_stop() once this attempt has run TRAINYARD_TRAINING_STOP_SECONDS: the
        # task then ends the job ``time_limit`` (billed), between two batches rather than by
        # Celery's soft-limit signal, which may interrupt a database call.
        self.time_limited = False
        self._stop_after = float(settings.TRAINYARD_TRAINING_STOP_SECONDS)
        self._billing: tuple[str, str | None] | None = None  # (device, creating API key)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        """Wall seconds since this attempt's monitor was created (just before training)."""
        return time.monotonic() - self._t0

    def __enter__(self) -> JobMonitor:
        self.beat_start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.beat_stop()

    def beat_start(self) -> None:
        """Start the heartbeat thread (a daemon: it never keeps a dying worker alive)."""
        if self._thread is None:
            self._stop.clear()
            # In a copy of this thread's context: its log lines carry the job's (job_id, …).
            self._thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._beat_loop,),
                name=f"heartbeat-{self.start.job_id}",
                daemon=True,
            )
            self._thread.start()

    def beat_stop(self, timeout: float = 5.0) -> None:
        """Stop the heartbeat thread and wait (up to ``timeout`` s) for it to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def beat(self) -> bool:
        """Write ``heartbeat_at = now`` if this attempt is still current and running; returns
        whether it was written (False: cancelled to terminal, or superseded)."""
        now = timezone.now()
        written = (
            self._qs()
            .filter(attempt=self.start.attempt, status=Status.RUNNING)
            .update(heartbeat_at=now)
        )
        self._last_beat = now
        return bool(written)

    def _beat_loop(self) -> None:
        try:
            while not self._stop.wait(self.heartbeat_every):
                try:
                    if not self.beat():
                        return  # superseded or finished: nothing of ours left to keep alive
                except Exception:  # a database blip must not end the beats for good
                    log.warning("heartbeat of %s failed", self.start.job_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def _qs(self) -> QuerySet[TrainingJob]:
        return TrainingJob.objects.for_tenant(self.start.organization_id).filter(
            pk=self.start.job_id
        )

    def should_stop(self) -> bool:
        """True when this attempt must stop: cancelled, superseded, no longer running, out of
        quota (:attr:`exhausted`), or past ``TRAINYARD_TRAINING_STOP_SECONDS`` of this attempt
        (:attr:`time_limited`)."""
        row = self._qs().values_list("status", "attempt", "cancel_requested_at").first()
        if row is None:
            return True
        status, attempt, cancel = row
        now = timezone.now()
        if (now - self._last_beat).total_seconds() >= self.heartbeat_every:
            self.beat()
        if (
            cancel is not None
            or attempt != self.start.attempt
            or status != Status.RUNNING
            or self.exhausted is not None
        ):
            return True
        if self.elapsed >= self._stop_after:
            self.time_limited = True
            return True
        return False

    def on_epoch(self, epoch: int, logs: dict) -> None:
        """Record an epoch's loss and accuracy in the timeline, the job's progress, and
        ``usage.cost_so_far`` (the compute used so far at the marginal list price); then check
        the compute used against what is left of the quota and spend caps (see
        :meth:`_check_budget`)."""
        start = self.start
        # Includes the earlier attempts' seconds through a resumed checkpoint (billed once).
        elapsed = Decimal(str(round(self.elapsed + start.resumed_seconds, 3)))
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
