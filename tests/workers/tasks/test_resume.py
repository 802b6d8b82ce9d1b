"""A job whose worker is SIGKILLed mid-training resumes from its last completed epoch.

Attempt 1 is the real ``train`` task in a child process, killed with SIGKILL once a couple of
epochs are checkpointed; attempt 2 is taken over through the real services (stale heartbeat,
``training_job_start``) and run in this process. Against the real PostgreSQL and storage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from saas.jobs import services as jobs
from saas.jobs.models import JobEvent, TrainingJob
from saas.metering.models import UsageEvent
from tests.conftest import make_tenant, small_text_rows, text_csv, upload

pytestmark = [pytest.mark.tf, pytest.mark.django_db(transaction=True)]
ROOT = Path(__file__).resolve().parents[3]
EPOCHS = 30
# 24 distinct rows (12 a class), validation_split 0.2: the grouped stratified split
# (workers/ml/splits.py) holds out floor(12 * 0.2) = 2 of each class, so 20 are trained on.
NUM_TRAIN = 20

CHILD = """
import django
django.setup()
from workers.tasks.training import train
train(job_id={job_id!r})
"""


def job_row(job_id: str) -> TrainingJob:
    return TrainingJob.objects.unscoped_all_tenants().get(pk=job_id)


def kill_after_checkpoint(job_id: str, *, at_least: int, env: dict, log: Path) -> int:
    """Run attempt 1 as a separate process; SIGKILL it once ``at_least`` epochs are
    checkpointed. Returns the epoch of the checkpoint it left behind."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(job_id=job_id)],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            checkpoint = job_row(job_id).checkpoint
            if checkpoint and checkpoint["epoch"] >= at_least:
                break
            assert child.poll() is None, log.read_text()[-3000:]
            time.sleep(0.02)
        else:
            pytest.fail("attempt 1 never checkpointed: " + log.read_text()[-3000:])
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert child.returncode == -signal.SIGKILL
    return job_row(job_id).checkpoint["epoch"]


def test_killed_attempt_resumes_from_its_last_epoch_and_bills_each_epoch_once(settings, tmp_path):
    tenant = make_tenant("acme")
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    created = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds["id"], "hyperparameters": {"epochs": EPOCHS, "batch_size": 1}},
        format="json",
    )
    assert created.status_code == 201, created.content
    job_id = created.json()["id"]
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TRAINYARD_STORAGE_DIR": str(settings.MEDIA_ROOT),
        "TF_USE_LEGACY_KERAS": "1",
        "PYTHONPATH": str(ROOT),
    }

    k = kill_after_checkpoint(job_id, at_least=2, env=env, log=tmp_path / "attempt1.log")
    killed = job_row(job_id)
    assert 2 <= k < EPOCHS and killed.status == "running" and killed.attempt == 1
    first_key = killed.checkpoint["key"]
    resumed_seconds = killed.checkpoint["seconds"]
    assert resumed_seconds > 0
    storage = Path(settings.MEDIA_ROOT)
    assert (storage / first_key).is_file()
    # Only the newest checkpoint is kept while it trains.
    ckpt_dir = storage / f"tenants/{tenant.org.pk}/jobs/{job_id}/checkpoints"
    assert [p.name for p in ckpt_dir.iterdir()] == [Path(first_key).name]
    assert UsageEvent.objects.for_tenant(tenant.org).count() == 0  # a dead attempt bills nothing

    # The worker died: its heartbeat goes stale, the reaper's ticket takes the job over.
    TrainingJob.objects.unscoped_all_tenants().filter(pk=job_id).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    assert jobs.training_jobs_reap_stuck() == [job_id]
    start = jobs.training_job_start(job_id=job_id, takeover=True)
    assert (start.job_id, start.attempt, start.resume_epoch) == (job_id, 2, k)
    assert start.resumed_seconds == resumed_seconds

    from workers.tasks.training import run_training

    run_training(start)

    job = job_row(job_id)
    assert job.status == "succeeded", job.error
    assert job.epoch == EPOCHS and job.checkpoint is None
    events = list(JobEvent.objects.for_tenant(tenant.org).filter(job_id=job_id))
    started = [e for e in events if e.type == "started"]
    assert started[-1].data == {"attempt": 2, "resumed_from_epoch": k}
    assert f"Resumed from epoch {k}" in started[-1].message
    epochs_seen = [e.data["epoch"] for e in events if e.type == "epoch"]
    # Attempt 1 recorded epochs 1..k (k-1 if killed between checkpoint and record); attempt 2
    # ran k+1..EPOCHS: every epoch after the checkpoint exactly once, none before it again.
    attempt2 = epochs_seen[epochs_seen.index(k + 1) :]
    assert attempt2 == list(range(k + 1, EPOCHS + 1))
    assert epochs_seen[: epochs_seen.index(k + 1)] in (list(range(1, k + 1)), list(range(1, k)))

    # Billing: examples of every epoch once; seconds = attempt 1 through its checkpoint plus
    # attempt 2 (attempt 1's partial epoch after the checkpoint is not billed).
    assert job.usage["examples_processed"] == NUM_TRAIN * EPOCHS
    assert job.usage["wall_seconds"] > resumed_seconds
    by_meter = {e.meter: e.quantity for e in UsageEvent.objects.for_tenant(tenant.org)}
    assert by_meter["training_examples"] == NUM_TRAIN * EPOCHS
    assert by_meter["training_compute_seconds"] == Decimal(str(job.usage["wall_seconds"]))
    # Checkpoints are gone with the job.
    assert not ckpt_dir.exists() or not any(ckpt_dir.iterdir())
    # Attempt 2 continued from the restored weights, not from scratch: its first epoch's loss
    # is below attempt 1's first (a fresh start would begin near ln 2 again).
    loss = {e.data["epoch"]: e.data["loss"] for e in events if e.type == "epoch"}
    assert loss[k + 1] < loss[1]


def test_a_checkpoint_after_the_last_epoch_resumes_to_evaluation_only(settings, tmp_path):
    """Killed while evaluating or exporting: the resumed attempt trains no epoch at all."""
    tenant = make_tenant("acme")
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    job_id = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds["id"], "hyperparameters": {"epochs": 2}},
        format="json",
    ).json()["id"]
    first = jobs.training_job_start(job_id=job_id)
    # Attempt 1 trains through the real runner with checkpoints, then "dies" before export.
    from saas.common.storage import local_copy
    from saas.contract.spec import TrainSpec
    from workers.ml import runners

    class Died(Exception):
        pass

    monitor = jobs.JobMonitor(first)
    ckpt = tmp_path / "a1-checkpoint"

    def on_epoch(epoch, logs):
        jobs.training_job_checkpoint_save(
            start=first, epoch=epoch, attempt_seconds=monitor.elapsed, local_dir=str(ckpt)
        )
        monitor.on_epoch(epoch, logs)
        if epoch == 2:
            raise Died

    (tmp_path / "out").mkdir()
    with local_copy(first.dataset_key) as path, pytest.raises(Died):
        runners.train(
            TrainSpec(
                task=first.task,
                dataset_path=path,
                output_dir=str(tmp_path / "out"),
                base_model=first.base_model,
                hyperparameters=first.hyperparameters,
                seed=first.seed,
                checkpoint_dir=str(ckpt),
            ),
            on_epoch=on_epoch,
        )
    assert job_row(job_id).checkpoint["epoch"] == 2
    TrainingJob.objects.unscoped_all_tenants().filter(pk=job_id).update(
        heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    second = jobs.training_job_start(job_id=job_id, takeover=True)
    assert second.resume_epoch == 2

    from workers.tasks.training import run_training

    run_training(second)
    job = job_row(job_id)
    assert job.status == "succeeded" and job.epoch == 2
    epochs_seen = [
        e.data["epoch"]
        for e in JobEvent.objects.for_tenant(tenant.org).filter(job_id=job_id, type="epoch")
    ]
    assert epochs_seen == [1, 2]  # nothing retrained
    assert job.usage["examples_processed"] == NUM_TRAIN * 2
