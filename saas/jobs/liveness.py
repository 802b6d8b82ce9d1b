"""Which training queues have a live worker: a heartbeat registry in Redis.

Each training worker's main process (``workers/celery_app.py``) writes, every
``TRAINYARD_WORKER_BEAT_SECONDS``, its hostname into one sorted set per queue it consumes
(``trainyard:workers:<queue>``), scored with the time of the beat; it removes itself on a
clean shutdown. A worker is alive while its last beat is younger than three beat intervals,
so a worker killed with SIGKILL drops out within ~30 s without anyone cleaning up. Reading is
one ``ZCOUNT`` (cached for a second per process, so a page of fifty GPU jobs costs one).

Redis holds only what can be rebuilt (DESIGN §1): after a Redis restart the live workers
re-register within one interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import redis
from django.conf import settings

log = logging.getLogger(__name__)

_KEY = "trainyard:workers:{queue}"
_CACHE_SECONDS = 1.0
_cache: dict[str, tuple[float, int | None]] = {}


_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    # One client (and connection pool) per URL and process, not a new connection per beat.
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2
        )
    return client


def _alive_for() -> float:
    """Seconds a beat keeps a worker alive: three intervals (one late beat is no outage)."""
    return 3 * float(settings.TRAINYARD_WORKER_BEAT_SECONDS)


def worker_beat(*, hostname: str, queues: Iterable[str], now: float | None = None) -> None:
    """Record that worker ``hostname`` consumes ``queues`` at ``now`` (Unix seconds; default
    the current time). Also drops members older than the alive window. No-op without
    ``REDIS_URL``. Raises ``redis.RedisError`` (the caller's loop logs and retries)."""
    if not settings.REDIS_URL:
        return
    at = time.time() if now is None else now
    pipe = _client().pipeline()
    for queue in queues:
        key = _KEY.format(queue=queue)
        pipe.zadd(key, {hostname: at})
        pipe.zremrangebyscore(key, "-inf", at - _alive_for())
        # The whole set expires once no worker beats at all (no key left behind forever).
        pipe.expire(key, int(_alive_for()) + 1)
    pipe.execute()


def worker_forget(*, hostname: str, queues: Iterable[str]) -> None:
    """Remove ``hostname`` from ``queues`` (a clean shutdown). Never raises."""
    if not settings.REDIS_URL:
        return
    try:
        pipe = _client().pipeline()
        for queue in queues:
            pipe.zrem(_KEY.format(queue=queue), hostname)
        pipe.execute()
    except redis.RedisError:
        log.warning("could not deregister worker %s", hostname, exc_info=True)


def workers_alive(*, queue: str) -> int | None:
    """How many workers consuming ``queue`` beat within the alive window; None when it cannot
    be known (no ``REDIS_URL``, or Redis unreachable) — callers then assume capacity exists
    rather than refuse or mislabel work. Never raises."""
    if not settings.REDIS_URL:
        return None
    now = time.monotonic()
    cached = _cache.get(queue)
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    try:
        n: int | None = int(
            _client().zcount(_KEY.format(queue=queue), time.time() - _alive_for(), "+inf")
        )
    except redis.RedisError:
        log.warning("worker liveness unknown for %s", queue, exc_info=True)
        n = None
    _cache[queue] = (now, n)
    return n


def liveness_cache_clear() -> None:
    """Forget the per-process cache (tests, and a worker that just registered)."""
    _cache.clear()
