"""Prediction counts aggregated per short window in Redis, flushed exactly once to the ledger.

The data plane (``serve``) answers thousands of predictions a second; writing a ledger row per
request would make PostgreSQL the bottleneck. Instead each answered request adds its inputs to
a Redis hash for the current window (``WINDOW_SECONDS``, by Redis's clock, inside the same Lua
script that commits the request, ``serve.admission``), and a flush turns every *closed* window
into one :class:`~saas.metering.models.UsageEvent` per (organisation, principal, model).

Exactly once: a window is closed two windows after it ends (no commit can still land in it,
since commits take their window from Redis's own clock, atomically); the flush writes its rows
with an idempotency key derived from the window and the group (``prediction_window:<w>-…``),
inside one transaction, and only then deletes the Redis hash. A flush killed before its commit
leaves the hash for the next one; killed after, the next one finds the rows already there
(``get_or_create`` on the unique key) and just deletes the hash. Any number of flushers may
run at once (every ``serve`` replica, and Celery beat's ``maintenance`` task).

How long a count lives only in Redis: until its window closes and a flusher runs, about
``2 × WINDOW_SECONDS`` + the flush interval (≈ 3 s with ``serve`` running, at most beat's
interval otherwise). So production Redis needs persistence that loses less than that on a
crash: AOF with ``appendfsync everysec`` (≤ 1 s) and ``maxmemory-policy noeviction``.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import DatabaseError, transaction

from saas.metering.models import Meter
from saas.metering.services import usage_record

log = logging.getLogger(__name__)

WINDOW_SECONDS = 1
INDEX_KEY = "dp:mw:index"  # sorted set: window numbers with counts pending, scored by number
# Field separator: ids never contain it.
SEP = "|"


def window_key(window: int) -> str:
    """The Redis hash holding window ``window``'s counts (``window`` = unix time // size)."""
    return f"dp:mw:{window}"


def group_field(*, organization_id: str, principal: str, model_id: str, measure: str) -> str:
    """A hash field: ``org|principal|model|measure``, measure ``n`` (inputs), ``r`` (requests),
    ``us`` (model execution CPU microseconds, the operator's inference cost, from
    ``serve.cpumeter``) or ``cold``."""
    return SEP.join((organization_id, principal, model_id, measure))


@dataclass
class _Group:
    inputs: int = 0
    requests: int = 0
    micros: int = 0
    cold_starts: int = 0


def _source_id(window: int, principal: str, model_id: str) -> str:
    # source_id is at most 64 characters; ids are ~26 each, so hash the pair to stay short.
    digest = hashlib.sha256(f"{principal}{SEP}{model_id}".encode()).hexdigest()[:24]
    return f"w{window}-{digest}"


def usage_windows_flush(
    *, redis_client, cpu_second_cost: Decimal = Decimal(0), now: float | None = None
) -> int:
    """Move every closed window's counts from Redis into the ledger; returns events written.

    ``redis_client`` is a ``redis.Redis``; ``cpu_second_cost`` (the rate card's, per second
    of model execution) prices each event's ``compute_cost``, the operator's inference cost;
    ``now`` (unix seconds) defaults to Redis's clock,
    the one the counts were stamped with. Safe to run concurrently and to kill at any point
    (see the module docstring). Raises redis/database errors to the caller, having lost
    nothing: the hash stays until its rows are committed.
    """
    if now is None:
        sec, usec = redis_client.time()
        now = sec + usec / 1e6
    closed_before = int(now // WINDOW_SECONDS) - 1  # windows < this one are closed
    windows = [int(w) for w in redis_client.zrangebyscore(INDEX_KEY, "-inf", closed_before - 1)]
    written = 0
    for window in windows:
        raw = redis_client.hgetall(window_key(window))
        groups: dict[tuple[str, str, str], _Group] = {}
        for field, value in raw.items():
            org, principal, model_id, measure = field.decode().split(SEP)
            g = groups.setdefault((org, principal, model_id), _Group())
            amount = int(value)
            if measure == "n":
                g.inputs += amount
            elif measure == "r":
                g.requests += amount
            elif measure == "us":
                g.micros += amount
            elif measure == "cold":
                g.cold_starts += amount
        occurred_at = datetime.datetime.fromtimestamp(window * WINDOW_SECONDS, tz=datetime.UTC)
        try:
            written += _write_window(window, groups, occurred_at, cpu_second_cost)
        except DatabaseError:
            # Nothing is lost (the hash stays for the next flush and for an operator); one
            # window that cannot be written must not hold back the ones after it.
            log.exception("metering window %s could not be written; kept in Redis", window)
            continue
        pipe = redis_client.pipeline(transaction=True)
        pipe.delete(window_key(window))
        pipe.zrem(INDEX_KEY, window)
        pipe.execute()
    return written


def _write_window(
    window: int,
    groups: dict[tuple[str, str, str], _Group],
    occurred_at: datetime.datetime,
    cpu_second_cost: Decimal,
) -> int:
    """One window's rows, in one transaction; returns how many were new."""
    written = 0
    with transaction.atomic():
        for (org, principal, model_id), g in groups.items():
            if g.inputs <= 0:
                continue
            cpu_seconds = Decimal(g.micros) / Decimal(1_000_000)
            _event, created = usage_record(
                organization_id=org,
                meter=Meter.PREDICTIONS,
                quantity=g.inputs,
                occurred_at=occurred_at,
                source_type="prediction_window",
                source_id=_source_id(window, principal, model_id),
                dimensions={
                    "requests": g.requests,
                    "cpu_seconds": float(cpu_seconds),
                    "cold_starts": g.cold_starts,
                    "window_seconds": WINDOW_SECONDS,
                    "principal": principal,
                },
                api_key_id=principal if principal.startswith("key_") else None,
                model_id=model_id,
                compute_cost=(cpu_seconds * cpu_second_cost).quantize(Decimal("0.00000001")),
            )
            written += int(created)
    return written
