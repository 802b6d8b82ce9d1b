"""Training tasks (queues ``training-cpu`` and ``training-gpu``, one job per worker at a time).

TensorFlow is loaded by ``runners.train`` on first use, i.e. in the pool child after fork.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from saas.celery import TaskName
from saas.common.storage import local_copy
from saas.contract.spec import TrainingCancelled, TrainingInputError, TrainSpec
from saas.jobs import services as jobs
from workers.ml import runners
from workers.ml.resources import Usage, measure

log = logging.getLogger(__name__)


# acks_late: a redelivered message is harmless. training_job_start locks the row and starts an
# attempt only for a queued job or a running one whose heartbeat went stale (its worker died);
# for a finished, cancelled or live job it returns None. reject_on_worker_lost puts the message
# back when the worker is killed mid-job, so another worker finishes it.
@shared_task(
    name=TaskName.TRAIN,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def train(self, *, job_id: str) -> None:
    """Run one attempt of training job ``job_id`` (a no-op for a finished or live job).

    Retries (without limit) while the job is deferred by ``training_job_start`` (for example
    the organisation's concurrency limit), after the countdown it gives.
    """
    try:
        start = jobs.training_job_start(job_id=job_id)
    except jobs.Deferred as wait:
        raise self.retry(countdown=wait.countdown) from None
    if start is None:
        return
    run_training(start)


def run_training(start: jobs.JobStart) -> None:
    """Train, then record the outcome: succeeded, cancelled or failed (input or platform).

    Never raises for a training failure: every outcome ends the job through a service.
    """
    monitor = jobs.JobMonitor(start)
    workdir = jobs.attempt_workdir(start)
    meter: Usage | None = None
    try:
        with local_copy(start.dataset_key) as path, measure() as meter:
            spec = TrainSpec(
                task=start.task,
                dataset_path=path,
                output_dir=str(workdir),
                base_model=start.base_model,
                hyperparameters=start.hyperparameters,
                seed=start.seed,
                handle=start.handle,
                text_column=start.text_column,
                label_column=start.label_column,
            )
            result = runners.train(spec, on_epoch=monitor.on_epoch, should_stop=monitor.should_stop)
        assert meter is not None  # bound by the with statement, which swallows no exception
        jobs.training_job_complete(start=start, result=result, resources=asdict(meter))
    except TrainingCancelled as stop:
        assert meter is not None  # raised inside the with statement, so meter is bound
        jobs.training_job_stopped(
            start=start,
            resources=asdict(meter),
            examples=getattr(stop, "examples_processed", 0),
            exhausted=monitor.exhausted,  # billing: the quota or spend cap ran out mid-job
        )
    except SoftTimeLimitExceeded:
        # Billing: the time limit is the tenant's job being too long, so its compute is billed
        # (left unbilled, a free tenant could loop limit-long jobs forever).
        jobs.training_job_time_limited(start=start, resources=asdict(meter) if meter else {})
    except TrainingInputError as exc:
        jobs.training_job_fail(
            start=start, code="input", message=str(exc), resources=asdict(meter) if meter else None
        )
    except Exception as exc:  # a platform fault must end the job, not the worker
        log.exception("training job %s failed", start.job_id)
        jobs.training_job_fail(start=start, code="platform", message=f"{type(exc).__name__}: {exc}")
    finally:
        jobs.remove_workdir(workdir)
