"""Celery tasks: thin glue between the saas services (state, ledger) and the pure runners."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import asdict

from celery import shared_task
from celery.signals import worker_process_init

from saas.celery import Queue, TaskName

log = logging.getLogger(__name__)


@worker_process_init.connect
def _child_started(**_kwargs):
    # Each pool child opens its own database connections (never share the parent's).
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close()


@shared_task(
    name=TaskName.TRAIN,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=None,
)
def train(self, *, job_id: str) -> None:
    """Run one attempt of training job ``job_id`` (a no-op for a finished or live job)."""
    from saas.jobs import services as jobs

    try:
        start = jobs.training_job_start(job_id=job_id)
    except jobs.Deferred as wait:
        raise self.retry(countdown=wait.countdown) from None
    if start is None:
        return
    run_training(start)


def run_training(start) -> None:
    """Train, then record the outcome: succeeded, cancelled or failed (input or platform)."""
    from saas.common.storage import local_copy
    from saas.contract.spec import TrainingCancelled, TrainingInputError, TrainSpec
    from saas.jobs import services as jobs
    from workers.ml import runners
    from workers.ml.resources import measure

    monitor = jobs.JobMonitor(start)
    workdir = jobs.attempt_workdir(start)
    meter = None
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
        jobs.training_job_complete(start=start, result=result, resources=asdict(meter))
    except TrainingCancelled as stop:
        jobs.training_job_stopped(
            start=start, resources=asdict(meter), examples=getattr(stop, "examples_processed", 0)
        )
    except TrainingInputError as exc:
        jobs.training_job_fail(
            start=start, code="input", message=str(exc), resources=asdict(meter) if meter else None
        )
    except Exception as exc:  # a platform fault must end the job, not the worker
        log.exception("training job %s failed", start.job_id)
        jobs.training_job_fail(start=start, code="platform", message=f"{type(exc).__name__}: {exc}")
    finally:
        jobs.remove_workdir(workdir)


@shared_task(name=TaskName.REAP_STUCK, ignore_result=True)
def reap_stuck() -> list[str]:
    """Re-enqueue running jobs whose worker stopped sending heartbeats (Celery beat)."""
    from saas.jobs.services import training_jobs_reap_stuck

    return training_jobs_reap_stuck()


@shared_task(name=TaskName.PREDICT, queue=Queue.INFERENCE.value, acks_late=False)
def predict(*, organization_id: str, model_id: str, inputs: list[str]) -> dict:
    """Run already-validated ``inputs`` through a model kept warm in this process.

    ``inputs`` are texts, or base64 image bytes for image models. Returns
    ``{"predictions": [...], "inference_ms": float}``.
    """
    from django.conf import settings

    from saas.registry.selectors import model_get
    from saas.registry.services import model_artifact_extract
    from workers.ml.model_cache import get_cache

    model = model_get(organization_id=organization_id, model_id=model_id)
    dest = settings.TRAINYARD_MODEL_CACHE_DIR / model.pk / f"v{model.version}"
    saved_model_dir = model_artifact_extract(key=model.artifact_key, dest=dest)
    loaded = get_cache().get((model.pk, model.version), str(saved_model_dir))
    batch = inputs if model.task == "text-classification" else [base64.b64decode(x) for x in inputs]
    t0 = time.perf_counter()
    predictions = loaded.predict(batch)
    return {"predictions": predictions, "inference_ms": round((time.perf_counter() - t0) * 1000, 3)}


@shared_task(name=TaskName.PURGE_IDEMPOTENCY, ignore_result=True)
def purge_idempotency_keys() -> int:
    """Delete Idempotency-Key records older than 24 h (Celery beat, hourly)."""
    from saas.limits.idempotency import idempotency_purge

    return idempotency_purge()


@shared_task(name=TaskName.PERIOD_CLOSE, ignore_result=True)
def period_close() -> list[str]:
    """Close last month's billing period for every organisation (idempotent)."""
    from saas.billing.services import period_close_previous_month

    return period_close_previous_month()


@shared_task(name=TaskName.STORAGE_SAMPLE, ignore_result=True)
def storage_sample() -> int:
    """Meter one hour of dataset and model storage per organisation."""
    from saas.billing.services import storage_sample as sample

    return sample()


@shared_task(name=TaskName.ENFORCE_GRACE, ignore_result=True)
def enforce_grace() -> list[str]:
    """Suspend organisations past due beyond the grace period."""
    from saas.billing.webhooks import billing_enforce_grace

    return billing_enforce_grace()


@shared_task(name=TaskName.USAGE_WARNINGS, ignore_result=True)
def usage_warnings() -> int:
    """Email 80 % / 100 % usage warnings (once per meter and month)."""
    from saas.billing.services import usage_warnings_send_all

    return usage_warnings_send_all()
