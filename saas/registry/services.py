"""Model artifacts: a SavedModel directory packed as ``.tar.gz`` into storage, and back."""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage


@dataclass(frozen=True)
class Artifact:
    key: str
    size: int
    sha256: str


def model_artifact_key(*, organization_id: str, model_id: str, version: int = 1) -> str:
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
