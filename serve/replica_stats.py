"""Publish this replica's figures to Redis for the operator console (``saas.inference.replicas``).

Off the request path: a background task reads the process's Prometheus registry every
``PUBLISH_SECONDS`` and writes one small JSON value with a TTL. p99 is taken from the latency
histogram's bucket counts over the last window (the difference from the previous snapshot), as
Prometheus' ``histogram_quantile`` does without interpolation: the upper bound of the first
bucket whose cumulative count reaches 99 %.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Any

from saas.inference.replicas import KEY_PREFIX, PUBLISH_SECONDS, TTL_SECONDS

from .metrics import COLD_STARTS, LATENCY, REQUESTS

log = logging.getLogger(__name__)


def _sum_samples(metric, suffix: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in metric.collect():
        for s in family.samples:
            if s.name.endswith(suffix):
                key = s.labels.get("le", "")
                out[key] = out.get(key, 0.0) + s.value
    return out


def latency_buckets() -> dict[float, float]:
    """Cumulative successful-prediction counts per bucket upper bound (s), all models summed."""
    raw = _sum_samples(LATENCY, "_bucket")
    return {float(le): v for le, v in raw.items()}


def p99(prev: dict[float, float], now: dict[float, float]) -> tuple[float | None, int]:
    """(p99 upper bound in s, requests) over the window between two bucket snapshots."""
    bounds = sorted(now)
    delta = {b: now[b] - prev.get(b, 0.0) for b in bounds}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return None, 0
    for b in bounds:
        if delta[b] >= 0.99 * total:
            return (b if b != float("inf") else None), int(total)
    return None, int(total)


def snapshot(
    plane, *, replica: str, started_at: float, window: tuple[float | None, int]
) -> dict[str, Any]:
    """The JSON this replica publishes (shape in :mod:`saas.inference.replicas`)."""
    requests = sum(_sum_samples(REQUESTS, "_total").values())
    cold = sum(_sum_samples(COLD_STARTS, "_total").values())
    return {
        "replica": replica,
        "started_at": started_at,
        "at": time.time(),
        "requests": int(requests),
        "cold_starts": int(cold),
        "models_loaded": len(plane.store.loaded()),
        "model_bytes": int(plane.store.total_bytes),
        "p99_seconds": window[0],
        "window_requests": window[1],
    }


async def publish_loop(plane) -> None:
    """Run until cancelled: publish every ``PUBLISH_SECONDS``; Redis errors are logged, never
    raised (the console then shows the replica as gone once the TTL passes)."""
    replica = f"{socket.gethostname()}:{os.getpid()}"
    started_at = time.time()
    prev = latency_buckets()
    while True:
        now = latency_buckets()
        value = snapshot(plane, replica=replica, started_at=started_at, window=p99(prev, now))
        prev = now
        try:
            await plane.redis.set(f"{KEY_PREFIX}{replica}", json.dumps(value), ex=TTL_SECONDS)
        except Exception as exc:
            log.debug("replica stats not published: %s", exc)
        await asyncio.sleep(PUBLISH_SECONDS)
