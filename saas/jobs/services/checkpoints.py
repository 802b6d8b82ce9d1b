"""Worker side: per-epoch training checkpoints in artifact storage, so a job whose worker died
resumes from its last completed epoch under the same id.

The runner writes a Keras ``BackupAndRestore`` backup (weights, optimizer state, epoch
counter) into a local directory at the end of every epoch; :func:`training_job_checkpoint_save`
packs it, stores it under the tenant's prefix and records it on the job row
(``TrainingJob.checkpoint``) — conditionally on the attempt still being current, so a
superseded attempt never overwrites its successor's checkpoint. The next attempt
(:func:`~saas.jobs.services.start.training_job_start`) reads the row and
:func:`training_job_checkpoint_restore` unpacks the backup before training, so Keras continues
at the next epoch. Checkpoints are deleted when the job ends (``_common.finish``), and each
one as soon as a newer one of the job is recorded.

Billing rule (each epoch billed once): an attempt that dies bills nothing itself, but the wall
seconds from its start to its last checkpoint are carried in the checkpoint (``seconds``,
cumulative over attempts) and added to the resuming attempt's when the job ends. The killed
attempt's partial epoch after its last checkpoint is never billed (a platform fault); the
resuming attempt runs that epoch again and bills it once. Examples are counted by the runner
as ``train size × epochs`` through the last epoch, whichever attempt ran it.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction

from ..models import TrainingJob
from ._common import Status, lock_attempt, stored_delete
from .start import JobStart

log = logging.getLogger(__name__)


def checkpoint_key(*, organization_id: str, job_id: str, attempt: int, epoch: int) -> str:
    """Where one checkpoint lives: keyed by tenant, job, attempt and epoch (never overwritten,
    so a late writer can never clobber a newer checkpoint)."""
    return f"tenants/{organization_id}/jobs/{job_id}/checkpoints/a{attempt}-e{epoch}.tar.gz"


def training_job_checkpoint_save(
    *, start: JobStart, epoch: int, attempt_seconds: float, local_dir: str
) -> bool:
    """Store the backup in ``local_dir`` as the job's checkpoint after 1-based ``epoch``.

    ``attempt_seconds``: wall seconds since this attempt started. Returns False (and stores
    nothing) when ``local_dir`` is empty or the attempt is no longer current.
    """
    if not os.path.isdir(local_dir) or not os.listdir(local_dir):
        return False
    key = checkpoint_key(
        organization_id=start.organization_id,
        job_id=start.job_id,
        attempt=start.attempt,
        epoch=epoch,
    )
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(local_dir, arcname="checkpoint")
        if default_storage.exists(key):
            default_storage.delete(key)
        with open(tmp, "rb") as fh:
            stored = default_storage.save(key, File(fh))
    finally:
        os.unlink(tmp)
    with transaction.atomic():
        job = lock_attempt(organization_id=start.organization_id, job_id=start.job_id)
        if job is None or job.attempt != start.attempt or job.status != Status.RUNNING:
            transaction.on_commit(lambda: stored_delete(stored))
            return False
        previous = (job.checkpoint or {}).get("key")
        TrainingJob.objects.for_tenant(start.organization_id).filter(pk=job.pk).update(
            checkpoint={
                "key": stored,
                "epoch": epoch,
                "seconds": round(start.resumed_seconds + attempt_seconds, 3),
                "attempt": start.attempt,
            }
        )
        if previous and previous != stored:
            transaction.on_commit(lambda: stored_delete(previous))
    return True


def training_job_checkpoint_restore(*, start: JobStart, local_dir: str) -> int:
    """Unpack the checkpoint this attempt resumes from into ``local_dir`` (created).

    Returns the epoch it restores (0: nothing to resume, ``local_dir`` left empty). A missing
    or unreadable checkpoint object is logged and treated as 0, so training restarts from
    scratch rather than failing.
    """
    Path(local_dir).mkdir(parents=True, exist_ok=True)
    if not start.checkpoint_key or start.resume_epoch <= 0:
        return 0
    parent = Path(local_dir).parent
    try:
        with tempfile.TemporaryDirectory(dir=parent) as tmp:
            with (
                default_storage.open(start.checkpoint_key, "rb") as fh,
                tarfile.open(fileobj=fh, mode="r:gz") as tar,
            ):
                tar.extractall(tmp, filter="data")
            for entry in Path(tmp, "checkpoint").iterdir():
                entry.rename(Path(local_dir) / entry.name)
    except (OSError, tarfile.TarError):
        log.warning("checkpoint %s unusable; starting over", start.checkpoint_key, exc_info=True)
        for entry in Path(local_dir).iterdir():
            if entry.is_file():
                entry.unlink()
        return 0
    return start.resume_epoch
