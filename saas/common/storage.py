"""Helpers over Django's storage API for workers that need a local file."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from django.core.files.storage import FileSystemStorage, default_storage


@contextlib.contextmanager
def local_copy(key: str, *, suffix: str = "") -> Iterator[str]:
    """Yield a local filesystem path holding the stored object ``key``.

    With the filesystem backend this is the stored file itself; with a remote backend
    (django-storages) the object is streamed to a temporary file, removed afterwards.
    """
    if isinstance(default_storage, FileSystemStorage):
        yield default_storage.path(key)
        return
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(key, "rb") as src:
            shutil.copyfileobj(src, out)
        yield tmp
    finally:
        os.unlink(tmp)
