"""The data plane's replicas as the operator console sees them.

Each ``serve`` replica writes a small JSON snapshot to Redis every
:data:`PUBLISH_SECONDS` under ``dp:replica:<replica id>`` with a TTL of :data:`TTL_SECONDS`, so a
replica that dies drops out of the list on its own (``serve.replica_stats`` writes it). The
snapshot: ``replica`` (host:pid), ``started_at`` and ``at`` (Unix seconds), ``requests`` and
``cold_starts`` (totals since start), ``models_loaded`` (count), ``model_bytes`` (bytes held),
``p99_seconds`` (p99 latency of successful predictions over the last window, the upper bound of
the histogram bucket holding it; None without traffic), ``window_requests``.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from django.conf import settings

KEY_PREFIX = "dp:replica:"
PUBLISH_SECONDS = 5.0
TTL_SECONDS = 15


def data_plane_replicas() -> list[dict[str, Any]] | None:
    """Live replicas' snapshots, sorted by replica id; None when Redis cannot be read."""
    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0
        )
        keys = sorted(client.scan_iter(match=f"{KEY_PREFIX}*", count=200))
        values = client.mget(keys) if keys else []
    except (redis.RedisError, ValueError):
        return None
    out = []
    for raw in values:
        if not raw:
            continue
        try:
            out.append(json.loads(raw))
        except ValueError:
            continue  # a replica of another version wrote something else: skip, never crash
    return out
