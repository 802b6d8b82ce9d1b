"""A per-process read-through cache whose entries live a bounded time.

The request path reads a few small rows on every request (the API key, its organisation, the
plan's limits) that change rarely but must stop being trusted soon after they change (a key
revoked, an organisation suspended). :class:`TTLCache` keeps each entry for at most
``settings.TRAINYARD_REQUEST_CACHE_SECONDS`` (≤ 1 s) after the moment its load *started*, so what
a request sees is never older than that bound, in every process, with no invalidation
messages. A bound of 0 turns caching off (the test suite's default: tests change a row and
read it back at once).

No locks: a gunicorn sync worker serves one request at a time, and under threads two
concurrent misses just load the same entry twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from django.conf import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_STALENESS_SECONDS = 1.0


def request_cache_seconds() -> float:
    """The configured staleness bound, clamped to [0, 1] s (the product promises ≤ 1 s)."""
    return max(0.0, min(MAX_STALENESS_SECONDS, float(settings.TRAINYARD_REQUEST_CACHE_SECONDS)))


class TTLCache(Generic[K, V]):
    """Map ``key -> value`` loaded by a callable, each entry trusted for ``ttl()`` seconds.

    Args:
        max_entries: bound on memory; the oldest entry is dropped when a new one would exceed it.
        ttl: seconds an entry is served after its load started (default
            :func:`request_cache_seconds`, read on every lookup so tests can change it).
    """

    def __init__(
        self, *, max_entries: int = 10_000, ttl: Callable[[], float] = request_cache_seconds
    ) -> None:
        self._entries: dict[K, tuple[float, V]] = {}
        self._max = max_entries
        self._ttl = ttl

    def get(self, key: K, load: Callable[[], V | None]) -> V | None:
        """The cached value of ``key`` if loaded less than ``ttl()`` seconds ago, else
        ``load()``'s (cached unless it is None: misses such as unknown keys are not kept, so
        guessing cannot fill the cache). Exceptions from ``load`` propagate, nothing cached."""
        ttl = self._ttl()
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = load()  # timestamped with `now`, taken before the load: the bound is honest
        if value is None or ttl <= 0:
            self._entries.pop(key, None)
            return value
        if key not in self._entries and len(self._entries) >= self._max:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget every entry (tests; a process that wants fresh reads at once)."""
        self._entries.clear()
