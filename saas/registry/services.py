"""Trained models: registering a job's model, its artifact (a SavedModel packed as ``.tar.gz``
into storage, and back), and downloading it.

The artifact helpers are storage plumbing called inside the job transitions, which record the
state change; ``model_download`` and ``model_delete`` are the writes a user triggers here, and
both are audited.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import redis
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from saas.common.actor import Actor
from saas.tenancy.audit import audit_record

from .models import TrainedModel

log = logging.getLogger(__name__)

#: The data plane's replicas listen here for new models to load before their first request.
PREWARM_CHANNEL = "dp:prewarm"
#: ... and here for deleted models to drop from memory, their metadata cache and disk.
EVICT_CHANNEL = "dp:evict"


def _publish(channel: str, model_id: str) -> int:
    """PUBLISH ``model_id`` on ``channel``; the number of replicas listening, 0 without Redis
    or on an error (logged)."""
    if not settings.REDIS_URL:
        return 0
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2
        )
        return int(client.publish(channel, model_id))
    except redis.RedisError as exc:
        log.warning("announcing %s on %s failed: %s", model_id, channel, exc)
        return 0


def model_prewarm_announce(*, model_id: str) -> int:
    """Tell the data plane's replicas that ``model_id`` exists, so each loads it into its
    cache now rather than on the first prediction (the cold start moves off the customer's
    request). Returns the number of replicas listening; 0 without Redis or on an error (a
    pre-warm is an optimisation: the first request then loads it)."""
    return _publish(PREWARM_CHANNEL, model_id)


def model_evict_announce(*, model_id: str) -> int:
    """Tell the data plane's replicas that ``model_id`` was deleted, so each forgets its
    metadata, drops it from memory and removes its extracted copy now (``serve.plane``).
    Returns the number of replicas listening; 0 without Redis or on an error. A replica that
    missed it stops serving the model when its metadata cache entry expires
    (``serve.plane.MODEL_TTL_SECONDS``) and removes the files when its disk cache is pruned."""
    return _publish(EVICT_CHANNEL, model_id)


@dataclass(frozen=True)
class Artifact:
    """A stored model tarball: storage ``key``, ``size`` in bytes and hex ``sha256``."""

    key: str
    size: int
    sha256: str


def model_artifact_key(*, organization_id: str, model_id: str, version: int = 1) -> str:
    """Where a model's tarball lives: keyed by tenant, model id and version, never user names."""
    return f"tenants/{organization_id}/models/{model_id}/v{version}/saved_model.tar.gz"


def model_artifact_store(*, organization_id: str, model_id: str, saved_model_dir: str) -> Artifact:
    """Pack ``saved_model_dir`` as ``saved_model/…`` in a gzip tarball and store it.

    Returns the storage key, size in bytes and SHA-256 of the tarball.
    """
    fd, tmp = tempfile.mkstemp(suffix=".tar.gz")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(saved_model_dir, arcname="saved_model")
        digest = hashlib.sha256()
        with open(tmp, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        key = model_artifact_key(organization_id=organization_id, model_id=model_id)
        if default_storage.exists(key):
            default_storage.delete(key)
        with open(tmp, "rb") as fh:
            stored = default_storage.save(key, File(fh))
        return Artifact(key=stored, size=os.path.getsize(tmp), sha256=digest.hexdigest())
    finally:
        os.unlink(tmp)


def model_artifact_delete(*, key: str) -> None:
    """Remove a stored tarball (an upload whose completing transaction lost the race)."""
    default_storage.delete(key)


def model_artifact_extract(*, key: str, dest: Path) -> Path:
    """Unpack a stored model tarball into ``dest`` (created) and return the SavedModel dir.

    Uses tarfile's ``data`` filter (no absolute paths, links outside, devices). Extraction goes
    to a sibling temp dir renamed into place, so a concurrent reader never sees half a model.
    """
    final = dest / "saved_model"
    if final.exists():
        return final
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".extract-"))
    try:
        with default_storage.open(key, "rb") as fh, tarfile.open(fileobj=fh, mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.rename(tmp, dest)
        except OSError:
            if not final.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def model_register(
    *,
    model_id: str,
    organization_id: str,
    job_id: str,
    task: str,
    base_model: str,
    classes: list[str],
    metrics: dict,
    artifact: Artifact,
) -> TrainedModel:
    """Create the :class:`TrainedModel` of a succeeded job (inside the job's completing
    transaction, which the job's timeline records). A second model for the same job violates
    the unique ``job`` (IntegrityError), so a redelivered completion cannot make two.

    Once the transaction commits, the data plane is asked to pre-warm the model
    (:func:`model_prewarm_announce`)."""
    model = TrainedModel.objects.for_tenant(organization_id).create(
        id=model_id,
        organization_id=organization_id,
        job_id=job_id,
        task=task,
        base_model=base_model,
        classes=classes,
        metrics=metrics,
        artifact_key=artifact.key,
        artifact_bytes=artifact.size,
        artifact_sha256=artifact.sha256,
    )
    # After the create: outside a transaction on_commit runs at once, and a replica must find
    # the row when it looks the model up.
    transaction.on_commit(lambda: model_prewarm_announce(model_id=model_id))
    return model


@transaction.atomic
def model_download(*, model: TrainedModel, actor: Actor) -> File:
    """Open ``model``'s artifact for download and audit it as ``model.downloaded``.

    ``model`` comes from the tenant-scoped selector. Returns the storage file opened ``rb``
    (the caller streams and closes it); its length is ``model.artifact_bytes``. Raises
    FileNotFoundError (nothing audited) when the artifact is missing from storage.
    """
    fh = default_storage.open(model.artifact_key, "rb")
    audit_record(
        organization_id=model.organization_id,
        action="model.downloaded",
        actor=actor,
        target_type="model",
        target_id=model.pk,
        bytes=model.artifact_bytes,
    )
    return fh


@transaction.atomic
def model_delete(*, model: TrainedModel, actor: Actor) -> bool:
    """Delete ``model`` (from :func:`~saas.registry.selectors.model_get_for_delete`, so
    already scoped to the caller's tenant): mark it deleted, audit ``model.deleted`` with
    ``actor``, and once the transaction commits remove its artifact from storage and announce
    the deletion to the data plane (:func:`model_evict_announce`). From then on no read lists
    or serves it and storage sampling no longer bills its bytes.

    Idempotent: returns True when this call deleted it, False when it was already deleted
    (nothing is audited or removed again). The row is locked first, so two concurrent
    deletions audit once."""
    locked = (
        TrainedModel.objects.for_tenant(model.organization_id).select_for_update().get(pk=model.pk)
    )
    if locked.deleted_at is not None:
        return False
    TrainedModel.objects.for_tenant(model.organization_id).filter(pk=model.pk).update(
        deleted_at=timezone.now()
    )
    audit_record(
        organization_id=model.organization_id,
        action="model.deleted",
        actor=actor,
        target_type="model",
        target_id=model.pk,
        bytes=locked.artifact_bytes,
        training_job=locked.job_id,
    )
    key, model_id = locked.artifact_key, locked.pk

    def after_commit() -> None:
        model_evict_announce(model_id=model_id)
        try:
            default_storage.delete(key)
        except OSError as exc:  # the row is deleted either way; an orphan file is only disk
            log.warning("removing the artifact of deleted model %s failed: %s", model_id, exc)

    transaction.on_commit(after_commit)
    return True
