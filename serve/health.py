"""The data plane's readiness checks (``GET /v2/health/ready``), named as the web tier's are
(``saas.common.health``): ``{name: "ok" | "<what failed>"}``.

- ``redis``: Redis answers PING (admission and metering need it on every prediction).
- ``database``: the key cache's background refresh reached PostgreSQL recently (it reads API
  keys, organisations and models from there; a replica whose cache cannot refresh serves
  stale keys only up to ``auth_max_stale_s`` and then refuses them).
- ``storage``: the artifact storage SavedModels are loaded from can be read.

What a failing check says is the error's class (and, for S3, the HTTP status), never its text:
a driver's message can carry a connection string or an endpoint with credentials. Every check
is bounded by :data:`CHECK_TIMEOUT_SECONDS`; the probes run concurrently, so an answer takes at
most about that long.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.files.storage import FileSystemStorage, default_storage

if TYPE_CHECKING:
    from .plane import Plane

CHECK_TIMEOUT_SECONDS = 3.0
#: A key nothing ever writes: asking whether it exists is one metadata read of a storage that
#: is neither the filesystem nor S3, answered "no" by a healthy one, an error otherwise.
STORAGE_PROBE_KEY = ".trainyard-readiness-probe"

# Storage probes run on one daemon thread of their own: the model store's loader thread may
# be busy extracting a large model for seconds, which must not read as "storage unreadable";
# a probe hung on an unreachable endpoint (botocore retries for minutes) must not hold up the
# process's exit; and one long-lived thread keeps its S3 client (django-storages keeps one per
# thread) instead of building one per probe. One probe at a time, so a hung endpoint cannot
# pile work up: a probe still running is awaited again by the next readiness request.
_probe_lock = threading.Lock()
_probe_running: Future[None] | None = None
_probe_queue: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()
_probe_thread: threading.Thread | None = None


def _probe_loop() -> None:
    while True:
        future = _probe_queue.get()
        future.set_running_or_notify_cancel()
        try:
            storage_probe()
        except BaseException as exc:  # noqa: BLE001 — handed to whoever awaits it
            future.set_exception(exc)
        else:
            future.set_result(None)


def database_age_limit(plane: Plane) -> float:
    """Seconds since the key cache's last successful refresh after which ``database`` fails."""
    return max(5.0, 4 * plane.config.auth_refresh_s)


async def check_redis(plane: Plane) -> str:
    """``"ok"`` when Redis answers PING within the timeout."""
    try:
        await asyncio.wait_for(plane.redis.ping(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "unreachable (timed out)"
    except Exception as exc:  # noqa: BLE001 — a probe answers, whatever went wrong
        return f"unreachable ({type(exc).__name__})"
    return "ok"


def check_database(plane: Plane) -> str:
    """``"ok"`` when the key cache reached PostgreSQL within :func:`database_age_limit`.

    The refresh runs every ``auth_refresh_s`` whether or not keys are cached (with none it
    pings), so its last success is the data plane's own view of the database: no extra query
    per probe."""
    auth = plane.auth
    age = time.monotonic() - auth.last_refresh_ok
    if auth.last_refresh_ok and age <= database_age_limit(plane):
        return "ok"
    why = f" ({auth.last_error_type})" if auth.last_error_type else ""
    if not auth.last_refresh_ok:
        return f"not reached yet{why}"
    return f"not reached for {age:.0f} s{why}"


def storage_probe() -> None:
    """Read model storage once; raises when it cannot be read.

    - The filesystem backend: its root must be a directory this process can list (a root that
      does not exist yet is fine: the backend creates it on the first save, and until then no
      model has been stored).
    - S3 (django-storages): a HEAD of the bucket, which fails on an unreachable endpoint,
      refused credentials (403) and a missing bucket (404). It needs ``s3:ListBucket``, which
      the storage needs anyway (without it S3 answers 403 for a missing key, not 404).
    - Any other backend: one ``exists()`` of a key nobody writes."""
    if isinstance(default_storage, FileSystemStorage):
        root = Path(default_storage.location)
        if not root.exists():
            return
        with os.scandir(root):  # NotADirectoryError, PermissionError
            pass
        return
    from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

    if isinstance(default_storage, S3Storage):
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
        return
    default_storage.exists(STORAGE_PROBE_KEY)


def _probe_future() -> Future[None]:
    """The storage probe in flight, or a new one queued for the probe thread."""
    global _probe_running, _probe_thread
    with _probe_lock:
        if _probe_thread is None:
            _probe_thread = threading.Thread(target=_probe_loop, name="serve-health", daemon=True)
            _probe_thread.start()
        if _probe_running is None or _probe_running.done():
            _probe_running = Future()
            _probe_queue.put(_probe_running)
        return _probe_running


async def check_storage() -> str:
    """``"ok"`` when :func:`storage_probe` succeeds within the timeout."""
    probe = asyncio.wrap_future(_probe_future())
    # A probe that outlives the timeout still ends; its outcome is read here so that asyncio
    # does not log it as never retrieved.
    probe.add_done_callback(lambda f: f.cancelled() or f.exception())
    try:
        await asyncio.wait_for(asyncio.shield(probe), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return "unreadable (timed out)"
    except Exception as exc:  # noqa: BLE001 — a probe answers, whatever went wrong
        # botocore's ClientError carries the HTTP status (403: refused, 404: no such bucket).
        response = getattr(exc, "response", None)
        meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
        status = meta.get("HTTPStatusCode")
        detail = f"{type(exc).__name__} {status}" if isinstance(status, int) else type(exc).__name__
        return f"unreadable ({detail})"
    return "ok"


async def readiness(plane: Plane) -> dict[str, str]:
    """Every check, run concurrently: ``{"redis": …, "database": …, "storage": …}``, each
    ``"ok"`` or what failed (see the module docstring)."""
    redis, storage = await asyncio.gather(check_redis(plane), check_storage())
    return {"redis": redis, "database": check_database(plane), "storage": storage}
