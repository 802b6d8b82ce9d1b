"""Training tasks (queues ``training-cpu`` and ``training-gpu``, one job per worker at a time).

TensorFlow is loaded by ``runners.train`` on first use, i.e. in the pool child after fork.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict

import structlog
from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, connection

from saas.celery import TaskName
from saas.common.storage import local_copy
from saas.contract.spec import TrainingCancelled, TrainingInputError, TrainSpec
from saas.jobs import services as jobs
from workers.ml import runners
from workers.ml.resources import Usage, measure

log = logging.getLogger(__name__)


# acks_late: a redelivered message is harmless. A ticket starts at most one queued job (claimed
# under its row lock) or, from the reaper, takes over a job whose heartbeat went stale (its
# worker died); otherwise training_job_start returns None. reject_on_worker_lost puts the message
# back when the worker is killed mid-job: it is then a spare ticket (training_job_start), and
# the killed job itself is taken over by the reaper's ticket once its heartbeat is stale, at
# most TRAINYARD_TRAINING_MAX_ATTEMPTS times in all (then it fails `worker_lost`).
@shared_task(
    name=TaskName.TRAIN,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def train(self, *, job_id: str, takeover: bool = False) -> None:
    """Redeem one ticket: run one attempt of the fairest queued job on ``job_id``'s device
    queue, or with ``takeover`` (the reaper's tickets) a new attempt of ``job_id`` itself
    after its worker died; or nothing (see ``training_job_start``).

    While every queued job is held back by its tenant's limit the ticket is re-sent after a
    capped exponential backoff (``jobs.defer_countdown``), never dropped: it is some queued
    job's only way to run.
    """
    try:
        start = jobs.training_job_start(job_id=job_id, takeover=takeover)
    except jobs.Deferred:
        raise self.retry(countdown=jobs.defer_countdown(self.request.retries)) from None
    if start is None:
        return
    run_training(start)


def run_training(start: jobs.JobStart) -> None:
    """Train, then record the outcome: succeeded, cancelled or failed (input or platform).

    A taken-over job resumes from its last checkpoint (``start.resume_epoch``); every epoch's
    checkpoint is stored before the epoch is recorded. Never raises for a training failure:
    every outcome ends the job through a service.

    Every line logged meanwhile (TensorFlow's, the heartbeat thread's too) carries ``job_id``,
    ``organization_id`` and ``attempt``: the job this ticket started, which need not be the
    ticket's own ``job_id`` (the fairest queued job runs), nor the tenant of the request that
    sent the ticket (its ``request_id`` stays bound, as where the ticket came from).
    """
    with structlog.contextvars.bound_contextvars(
        job_id=start.job_id, organization_id=start.organization_id, attempt=start.attempt
    ):
        # One line each way per attempt (minutes to hours long): where it began and how long
        # it held the worker; the outcome itself is the job's status and events.
        began = time.monotonic()
        log.info(
            "training attempt started: %s on %s, from epoch %d",
            start.task,
            start.base_model,
            start.resume_epoch,
        )
        try:
            _run_training(start)
        finally:
            log.info("training attempt ended after %.1f s", time.monotonic() - began)


def _run_training(start: jobs.JobStart) -> None:
    monitor = jobs.JobMonitor(start)
    workdir = jobs.attempt_workdir(start)
    output_dir, checkpoint_dir = workdir / "out", workdir / "checkpoint"
    output_dir.mkdir()
    meter: Usage | None = None
    # The heartbeat thread beats through every phase (load, adapt, fit, evaluate, export).
    monitor.beat_start()
    try:
        jobs.training_job_checkpoint_restore(start=start, local_dir=str(checkpoint_dir))

        def on_epoch(epoch: int, logs: dict) -> None:
            try:
                jobs.training_job_checkpoint_save(
                    start=start,
                    epoch=epoch,
                    attempt_seconds=monitor.elapsed,
                    local_dir=str(checkpoint_dir),
                )
            except Exception:  # storage trouble costs resumability, never the job
                log.warning("checkpoint of %s failed", start.job_id, exc_info=True)
            monitor.on_epoch(epoch, logs)

        with local_copy(start.dataset_key) as path, measure() as meter:
            spec = TrainSpec(
                task=start.task,
                dataset_path=path,
                output_dir=str(output_dir),
                base_model=start.base_model,
                hyperparameters=start.hyperparameters,
                seed=start.seed,
                handle=start.handle,
                text_column=start.text_column,
                label_column=start.label_column,
                checkpoint_dir=str(checkpoint_dir),
            )
            result = runners.train(spec, on_epoch=on_epoch, should_stop=monitor.should_stop)
        assert meter is not None  # bound by the with statement, which swallows no exception
        jobs.training_job_complete(start=start, result=result, resources=asdict(meter))
    except TrainingCancelled as stop:
        assert meter is not None  # raised inside the with statement, so meter is bound
        if monitor.time_limited:
            jobs.training_job_time_limited(
                start=start,
                resources=asdict(meter),
                examples=getattr(stop, "examples_processed", None),
            )
            return
        jobs.training_job_stopped(
            start=start,
            resources=asdict(meter),
            examples=getattr(stop, "examples_processed", 0),
            exhausted=monitor.exhausted,  # billing: the quota or spend cap ran out mid-job
        )
    except SoftTimeLimitExceeded:
        # Billing: the time limit is the tenant's job being too long, so its compute is billed
        # (left unbilled, a free tenant could loop limit-long jobs forever). The backstop for a
        # phase that never reached a batch: the signal may have cut a database call short,
        # leaving the connection mid-command, so a failed write is retried on a new one.
        resources = asdict(meter) if meter else {}
        try:
            jobs.training_job_time_limited(start=start, resources=resources)
        except DatabaseError:
            if connection.in_atomic_block:
                raise
            connection.close()
            jobs.training_job_time_limited(start=start, resources=resources)
    except TrainingInputError as exc:
        jobs.training_job_fail(
            start=start, code="input", message=str(exc), resources=asdict(meter) if meter else None
        )
    except Exception as exc:  # a platform fault must end the job, not the worker
        log.exception("training job %s failed", start.job_id)
        jobs.training_job_fail(start=start, code="platform", message=f"{type(exc).__name__}: {exc}")
    finally:
        monitor.beat_stop()
        jobs.remove_workdir(workdir)
