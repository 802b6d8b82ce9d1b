"""Rate limits: token buckets in Redis, updated atomically by one Lua script.

Each bucket holds up to ``capacity`` tokens and refills at ``capacity / window`` tokens per
second; a request takes one token from the API key's bucket *and* the organisation's bucket,
or from neither (the script checks both before taking). The bucket sizes are arguments: they
are the organisation's plan's limits, which the callers above (the API base view, the
dashboard) read from billing, since this module sits below it. The token bucket is the
classic algorithm (e.g. Tanenbaum, *Computer Networks*, §5.4; the same scheme as Stripe's API
limiter).

Headers follow the IETF draft "RateLimit header fields for HTTP": ``RateLimit-Limit``,
``RateLimit-Remaining``, ``RateLimit-Reset`` (seconds until the bucket is full again), for the
tighter of the two buckets; a refused request gets ``Retry-After`` (seconds).

Without ``REDIS_URL`` (the embedded demo configuration) limits are not enforced.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
from dataclasses import dataclass

import redis
from django.conf import settings

log = logging.getLogger(__name__)

# KEYS: bucket keys. ARGV: capacity_1, rate_1, capacity_2, rate_2, … (rate in tokens/second).
# Returns {allowed (0/1), then per bucket: remaining (floor), seconds_to_full*1000, retry_ms}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local n = #KEYS
local tokens = {}
local allowed = 1
for i = 1, n do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local have = tonumber(state[1]) or cap
  local ts = tonumber(state[2]) or now
  have = math.min(cap, have + math.max(0, now - ts) * rate)
  tokens[i] = have
  if have < 1 then allowed = 0 end
end
local out = {allowed}
for i = 1, n do
  local cap = tonumber(ARGV[2 * i - 1])
  local rate = tonumber(ARGV[2 * i])
  local have = tokens[i]
  if allowed == 1 then have = have - 1 end
  redis.call('HSET', KEYS[i], 'tokens', have, 'ts', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate * 1000) + 1000)
  local retry = 0
  if have < 1 then retry = math.ceil((1 - have) / rate * 1000) end
  table.insert(out, math.floor(have))
  table.insert(out, math.ceil((cap - have) / rate * 1000))
  table.insert(out, retry)
end
return out
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int

    def headers(self) -> dict[str, str]:
        h = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            h["Retry-After"] = str(max(1, self.retry_after_seconds))
        return h


class _Lane:
    """This process's one Redis connection for the limiter's one command per request.

    redis-py's client wraps each command in a pool checkout (pid check, lock), a retry policy
    and observability hooks: ~0.05–0.1 ms a call here, several times the loopback round trip
    itself, on every API request. The limiter needs none of it: one connection per process
    (made again after a fork, or after any error), one ``EVALSHA`` of a script loaded once,
    under a lock for threaded servers. The connection is redis-py's own (``make_connection``
    from ``REDIS_URL``: database, password, TLS as the rest of the app), so only the command
    path is lean. Errors propagate to :func:`rate_limit_check`, which lets the request through.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._url = ""
        self._conn: redis.connection.ConnectionInterface | None = None
        self._sha = hashlib.sha1(_SCRIPT.encode(), usedforsecurity=False).hexdigest()

    def _connection(self) -> redis.connection.ConnectionInterface:
        conn, url = self._conn, settings.REDIS_URL
        if conn is None or self._pid != os.getpid() or self._url != url:
            pool = redis.ConnectionPool.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            conn = self._conn = pool.make_connection()
            self._pid, self._url = os.getpid(), url
        return conn

    def run(self, keys: list[str], args: list[float | int]) -> list[int]:
        with self._lock:
            conn = self._connection()
            try:
                try:
                    conn.send_command("EVALSHA", self._sha, len(keys), *keys, *args)
                    return conn.read_response()
                except redis.exceptions.NoScriptError:  # a new or flushed server
                    conn.send_command("EVAL", _SCRIPT, len(keys), *keys, *args)
                    return conn.read_response()
            except BaseException:
                conn.disconnect()  # never reuse a connection in an unknown state
                self._conn = None
                raise


_lane = _Lane()


def rate_limit_check(
    *,
    organization_id: str,
    principal: str,
    requests_per_key: int,
    requests_per_organization: int,
) -> Decision | None:
    """Take one token from ``principal``'s bucket (an API key id or ``user:<id>``), of size
    ``requests_per_key``, and the organisation's, of size ``requests_per_organization`` (both
    requests per ``TRAINYARD_RATE_LIMIT_WINDOW_SECONDS``, at least 1). Returns the decision, or
    None when limits are off (no Redis configured, or Redis unreachable: requests are let
    through and the failure is logged)."""
    if not settings.REDIS_URL:
        return None
    window = float(settings.TRAINYARD_RATE_LIMIT_WINDOW_SECONDS)
    per_principal, per_org = int(requests_per_key), int(requests_per_organization)
    keys = [f"rl:p:{principal}", f"rl:o:{organization_id}"]
    args = [per_principal, per_principal / window, per_org, per_org / window]
    try:
        raw = _lane.run(keys, args)
    except Exception as exc:  # Redis down: availability first, and say so in the log
        log.warning("rate limiting skipped: %s", exc)
        return None
    allowed = bool(raw[0])
    buckets = [(per_principal, *raw[1:4]), (per_org, *raw[4:7])]
    # Report the bucket with the fewest tokens left relative to its size.
    cap, remaining, to_full_ms, retry_ms = min(buckets, key=lambda b: b[1] / b[0])
    if not allowed:
        retry_ms = max(b[3] for b in buckets)
    return Decision(
        allowed=allowed,
        limit=cap,
        remaining=int(remaining),
        reset_seconds=math.ceil(to_full_ms / 1000),
        retry_after_seconds=math.ceil(retry_ms / 1000),
    )


def rate_limit_take(*, key: str, capacity: int, window_seconds: float) -> Decision | None:
    """Take one token from the single bucket ``key`` (any string naming what is limited, e.g.
    ``auth:signup:ip:203.0.113.9``), of ``capacity`` tokens refilled over ``window_seconds``:
    the same token bucket and script as :func:`rate_limit_check`, for callers that limit by
    something other than an organisation (sign-in, sign-up and password-reset attempts per
    client address). Returns the decision, or None when limits are off (no Redis configured,
    or Redis unreachable: let through, and logged)."""
    if not settings.REDIS_URL:
        return None
    cap = max(1, int(capacity))
    try:
        raw = _lane.run([f"rl:{key}"], [cap, cap / float(window_seconds)])
    except Exception as exc:  # Redis down: availability first, and say so in the log
        log.warning("rate limiting skipped: %s", exc)
        return None
    return Decision(
        allowed=bool(raw[0]),
        limit=cap,
        remaining=int(raw[1]),
        reset_seconds=math.ceil(raw[2] / 1000),
        retry_after_seconds=math.ceil(raw[3] / 1000),
    )
