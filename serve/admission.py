"""Admission and metering in Redis: one Lua call admits a request, one commits its count
(concurrent requests share those calls, :class:`Coalescer`).

``admit`` checks, atomically and in this order, for a request of ``n`` inputs:

1. **Rate limits**, token buckets weighted by inputs (the key's and the organisation's, the
   plan's ``predictions_per_key`` / ``predictions_per_organization`` per window): a request
   needs ``min(n, capacity)`` tokens in both and takes ``n`` (a request larger than a bucket is
   admitted when the bucket is full and leaves it in debt, so big requests are not starved).
2. **The hard quota** (plans with hard limits): the organisation's month counter plus ``n``
   must not pass the plan's included predictions.
3. **Spend caps**, the organisation's and the key's: month-to-date spend as of the last
   ledger snapshot (``PredictionBudget``) plus what the counters added since, priced at the
   prediction's unit price (included units first for the organisation; the key's usage at unit
   price, as ``billing_check`` counts it). Refused when the cap is already reached or this
   request would pass it.

If all pass it takes the tokens and *reserves* ``n`` on the month counters, so concurrent
requests at a quota's edge can never overshoot it: each sees the others' reservations. A failed
request calls ``release``, giving the reservation back.

**Exactly once.** The count is committed to the current metering window
(``saas.metering.windows``) *after* the answer has been written to the client's socket, by
:class:`CommitWriter`, which writes the commit command to Redis synchronously in the same
event-loop step (no ``await`` between the two writes). On loopback and on a LAN both writes
reach their peers' sockets as they are made, so a ``serve`` killed at any instant has either
not answered (nothing counted) or answered and sent the count: the window in which a kill could
separate them is the few microseconds between two system calls, where committing first left a
whole Redis round trip (and a group commit's wait) in which a killed ``serve`` had counted an
answer the client never received. A commit Redis refuses (an error reply, or no connection)
is retried through redis-py and, failing that, written to the ledger directly
(``saas.inference.services.prediction_usage_record``), so an answered request is not lost. Counters are seeded from the ledger snapshot when absent (a new month, or an empty
Redis), and exist only while a limit needs them (a hard quota or an organisation spend cap
for the organisation's, a key spend cap for the key's): with no limit there is nothing to
count, and a limit set later starts from the ledger's figure. A ``serve`` killed between admit and commit leaves its in-flight reservations on the
counters until the month ends: the quota errs on the safe side by at most the requests in
flight at the kill, and the ledger (which only committed counts reach) is exact.

The token bucket with a cost per request is the classic algorithm (Tanenbaum, *Computer
Networks*, §5.4; Stripe's and GitHub's API limiters weigh requests the same way).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from saas.inference.selectors import PredictionBudget, ServingPrincipal
from saas.metering.windows import INDEX_KEY, SEP, WINDOW_SECONDS

log = logging.getLogger(__name__)

COUNTER_TTL_SECONDS = 40 * 24 * 3600  # outlives its month

# Admits a group of requests in order, each exactly as if it were alone (later ones see the
# earlier ones' tokens and reservations). Per request i (0-based): KEYS[4i+1..4i+4] = key
# bucket, org bucket, org month counter, key month counter; ARGV[17i+1..17i+17] = n, cap_k,
# rate_k, cap_o, rate_o, hard limit (-1: none), org seed, key seed, unit price, included, org
# cap (-1), org spent, org units, key cap (-1), key spent, key units, counter ttl.
# Returns 5 values per request: {1, remaining_k, to_full_k_ms, remaining_o, to_full_o_ms} when
# admitted, else {0, reason, retry_ms or used, figure (string), 0}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local out = {}
local function admit(K, A)
  local n = tonumber(A[1])
  local have = {}
  local caps = {tonumber(A[2]), tonumber(A[4])}
  local rates = {tonumber(A[3]), tonumber(A[5])}
  local retry = 0
  for i = 1, 2 do
    local state = redis.call('HMGET', K[i], 'tokens', 'ts')
    local tokens = tonumber(state[1]) or caps[i]
    local ts = tonumber(state[2]) or now
    tokens = math.min(caps[i], tokens + math.max(0, now - ts) * rates[i])
    have[i] = tokens
    local need = math.min(n, caps[i])
    if tokens < need then
      retry = math.max(retry, math.ceil((need - tokens) / rates[i] * 1000))
    end
  end
  if retry > 0 then
    for i = 1, 2 do
      redis.call('HSET', K[i], 'tokens', have[i], 'ts', now)
      redis.call('PEXPIRE', K[i], math.ceil(caps[i] / rates[i] * 1000) + 1000)
    end
    return {0, 'rate', retry, tostring(math.floor(math.min(have[1], have[2]))), 0}
  end
  local ttl = tonumber(A[17])
  local hard = tonumber(A[6])
  local org_cap = tonumber(A[11])
  local key_cap = tonumber(A[14])
  -- A counter exists only while a limit needs it, seeded from the ledger when that starts.
  local org_counted = hard >= 0 or org_cap >= 0
  local key_counted = key_cap >= 0
  local used = 0
  local kused = 0
  if org_counted then
    used = tonumber(redis.call('GET', K[3]))
    if not used then
      used = tonumber(A[7])
      redis.call('SET', K[3], A[7], 'EX', ttl)
    end
  else
    redis.call('DEL', K[3])
  end
  if key_counted then
    kused = tonumber(redis.call('GET', K[4]))
    if not kused then
      kused = tonumber(A[8])
      redis.call('SET', K[4], A[8], 'EX', ttl)
    end
  else
    redis.call('DEL', K[4])
  end
  if hard >= 0 and used + n > hard then
    return {0, 'quota', math.floor(used), A[6], 0}
  end
  local price = tonumber(A[9])
  local included = tonumber(A[10])
  if org_cap >= 0 then
    local base = tonumber(A[12])
    local base_units = math.max(0, tonumber(A[13]) - included)
    local before = base + price * (math.max(0, used - included) - base_units)
    local after = base + price * (math.max(0, used + n - included) - base_units)
    if before >= org_cap or after > org_cap + 1e-9 then
      return {0, 'org_cap', 0, string.format('%.6f', before), 0}
    end
  end
  if key_cap >= 0 then
    local before = tonumber(A[15]) + price * (kused - tonumber(A[16]))
    local after = before + price * n
    if before >= key_cap or after > key_cap + 1e-9 then
      return {0, 'key_cap', 0, string.format('%.6f', before), 0}
    end
  end
  local res = {1}
  for i = 1, 2 do
    local left = have[i] - n
    redis.call('HSET', K[i], 'tokens', left, 'ts', now)
    redis.call('PEXPIRE', K[i], math.ceil(caps[i] / rates[i] * 1000) + 1000)
    table.insert(res, math.floor(left))
    table.insert(res, math.ceil((caps[i] - left) / rates[i] * 1000))
  end
  if org_counted then redis.call('INCRBY', K[3], n) end
  if key_counted then redis.call('INCRBY', K[4], n) end
  return res
end
for r = 0, #KEYS / 4 - 1 do
  local K = {KEYS[4 * r + 1], KEYS[4 * r + 2], KEYS[4 * r + 3], KEYS[4 * r + 4]}
  local A = {}
  for j = 1, 17 do A[j] = ARGV[17 * r + j] end
  local res = admit(K, A)
  for j = 1, 5 do table.insert(out, res[j]) end
end
return out
"""

# Commits a group of answered requests to the current window. KEYS: 1 the window index.
# ARGV: 1 window seconds, then 4 per request: group prefix (org|principal|model|), n, micros,
# cold (0/1). Returns the window number.
_COMMIT = """
local t = redis.call('TIME')
local w = math.floor(tonumber(t[1]) / tonumber(ARGV[1]))
local k = 'dp:mw:' .. w
for i = 2, #ARGV, 4 do
  redis.call('HINCRBY', k, ARGV[i] .. 'n', ARGV[i + 1])
  redis.call('HINCRBY', k, ARGV[i] .. 'r', 1)
  redis.call('HINCRBY', k, ARGV[i] .. 'us', ARGV[i + 2])
  if tonumber(ARGV[i + 3]) > 0 then redis.call('HINCRBY', k, ARGV[i] .. 'cold', 1) end
end
redis.call('EXPIRE', k, 604800)
redis.call('ZADD', KEYS[1], w, w)
return w
"""

# KEYS: 1 org month counter, 2 key month counter. ARGV: 1 n.
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('DECRBY', KEYS[2], ARGV[1]) end
return 1
"""


@dataclass(frozen=True)
class Admitted:
    """An admitted request: its reservation and the ``RateLimit-*`` figures to send."""

    organization_id: str
    principal: str
    month: str
    inputs: int
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        """IETF draft "RateLimit header fields for HTTP", for the tighter bucket."""
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(max(0, self.remaining)),
            "RateLimit-Reset": str(self.reset_seconds),
        }


@dataclass(frozen=True)
class Refused:
    """Why admission said no: ``reason`` is ``rate``, ``quota``, ``org_cap`` or ``key_cap``;
    ``retry_after_seconds`` for ``rate``; ``figure`` the used count or spend it saw."""

    reason: str
    retry_after_seconds: int
    figure: str
    limit: int


def _counter_keys(organization_id: str, principal: str, month: str) -> list[str]:
    return [f"dp:q:o:{organization_id}:{month}", f"dp:q:k:{principal}:{month}"]


def _num(value) -> str:
    return format(value, "f") if value is not None else "-1"


@dataclass(frozen=True)
class CommitItem:
    """An answered request's count, as the commit script takes it."""

    organization_id: str
    principal: str
    model_id: str
    inputs: int
    micros: int
    cold_start: bool
    prediction_id: str

    def args(self) -> list[str | int]:
        prefix = SEP.join((self.organization_id, self.principal, self.model_id)) + SEP
        return [prefix, self.inputs, max(0, int(self.micros)), int(self.cold_start)]


def _resp(*parts: str | int | bytes) -> bytes:
    """A Redis command in RESP (https://redis.io/docs/latest/develop/reference/protocol-spec/)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class CommitWriter:
    """A Redis connection of its own whose commits are written synchronously.

    :meth:`write` puts an ``EVALSHA`` of the commit script on the socket at once (asyncio's
    ``transport.write`` hands the bytes to the kernel when the socket can take them, which
    for a few hundred bytes is always) and returns; a reader task matches Redis's replies
    to the commits in order. An error reply, or a connection lost before the reply, sends the
    commit to ``fallback`` — except that a reply lost with the connection is ambiguous (Redis
    may have applied it), and is then counted as applied and logged, never sent twice.
    """

    def __init__(self, url: str, fallback) -> None:
        from redis.asyncio.connection import parse_url

        self._options = parse_url(url)
        self._fallback = fallback
        self._sha = hashlib.sha1(_COMMIT.encode(), usedforsecurity=False).hexdigest()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[CommitItem | None] = deque()
        self._task: asyncio.Task | None = None
        self.ambiguous = 0

    async def start(self, client: Redis) -> None:
        """Load the script and connect, then keep reading replies (and reconnecting)."""
        await client.script_load(_COMMIT)
        self._task = asyncio.create_task(self._run(), name="commit-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()

    def write(self, item: CommitItem) -> None:
        """Commit ``item`` now (synchronously), or hand it to the fallback."""
        writer = self._writer
        if writer is None or writer.is_closing():
            asyncio.ensure_future(self._fallback(item))
            return
        writer.write(_resp("EVALSHA", self._sha, 1, INDEX_KEY, WINDOW_SECONDS, *item.args()))
        self._pending.append(item)

    async def _connect(self) -> asyncio.StreamReader:
        o = self._options
        if "path" in o:
            reader, writer = await asyncio.open_unix_connection(o["path"])
        else:
            reader, writer = await asyncio.open_connection(
                o.get("host", "localhost"), o.get("port", 6379)
            )
        if o.get("password"):
            auth = [o["username"], o["password"]] if o.get("username") else [o["password"]]
            writer.write(_resp("AUTH", *auth))
            self._pending.append(None)
        if o.get("db"):
            writer.write(_resp("SELECT", o["db"]))
            self._pending.append(None)
        self._writer = writer
        return reader

    async def _run(self) -> None:
        while True:
            try:
                reader = await self._connect()
                while True:
                    line = await reader.readline()
                    if not line:
                        raise ConnectionError("Redis closed the connection")
                    item = self._pending.popleft() if self._pending else None
                    if line.startswith(b"-"):
                        log.warning("metering commit refused by Redis: %s", line.strip()[:200])
                        if item is not None:
                            await self._fallback(item)
                        elif b"NOAUTH" in line or b"WRONGPASS" in line or b"DB index" in line:
                            raise ConnectionError(line.decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                writer, self._writer = self._writer, None
                if writer is not None:
                    writer.close()
                lost = [i for i in self._pending if i is not None]
                self._pending.clear()
                if lost:
                    self.ambiguous += len(lost)
                    log.error(
                        "Redis connection lost with %d metering commits unacknowledged "
                        "(counted as applied): %s",
                        len(lost),
                        exc,
                    )
                await asyncio.sleep(0.5)


class Coalescer:
    """Group commit for one Redis script: concurrent calls share one round trip.

    When no call is in flight, a submitted item is sent at once (no added latency); items
    submitted while one is in flight are sent together, in order, as soon as it returns, at
    most ``max_items`` a call. The same idea as a database's group commit and as the model
    batching in ``serve.runtime``: under load, round trips per request fall below one.
    """

    def __init__(self, call, max_items: int = 128) -> None:
        self._call = call
        self._max = max_items
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._busy = False

    async def submit(self, item: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            asyncio.ensure_future(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._pending[: self._max]
                del self._pending[: self._max]
                try:
                    results = await self._call([item for item, _ in group])
                except Exception as exc:  # every member gets the error: none was applied
                    for _, fut in group:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(group, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._busy = False


class Admission:
    """The three scripts, bound to one ``redis.asyncio.Redis`` client.

    ``admit`` and ``commit`` are coalesced across concurrent requests (:class:`Coalescer`):
    one round trip each, shared under load. Methods raise ``redis`` errors (the caller
    answers 503: a request that cannot be metered is not served).
    """

    def __init__(self, client: Redis, *, rate_window_seconds: float) -> None:
        self.client = client
        self.rate_window_seconds = rate_window_seconds
        self._admit_script = client.register_script(_ADMIT)
        self._commit_script = client.register_script(_COMMIT)
        self._release = client.register_script(_RELEASE)
        self._admits = Coalescer(self._admit_group)
        self._commits = Coalescer(self._commit_group)

    async def _admit_group(self, items: list[tuple[list[str], list[str | int | float]]]) -> list:
        keys = [k for ks, _ in items for k in ks]
        args = [a for _, as_ in items for a in as_]
        raw = await self._admit_script(keys=keys, args=args)
        return [raw[5 * i : 5 * i + 5] for i in range(len(items))]

    async def _commit_group(self, items: list[list[str | int]]) -> list[int]:
        args: list[str | int | float] = [WINDOW_SECONDS]
        for item in items:
            args.extend(item)
        window = int(await self._commit_script(keys=[INDEX_KEY], args=args))
        return [window] * len(items)

    async def admit(
        self, *, principal: ServingPrincipal, budget: PredictionBudget, inputs: int
    ) -> Admitted | Refused:
        """Admit ``inputs`` predictions for ``principal`` against ``budget`` (see the module
        docstring); reserves them on the month counters when admitted."""
        per_key = max(1, principal.predictions_per_key)
        per_org = max(1, principal.predictions_per_organization)
        window = self.rate_window_seconds
        keys = [
            f"dp:rl:p:{principal.principal}",
            f"dp:rl:o:{principal.organization_id}",
            *_counter_keys(principal.organization_id, principal.principal, budget.month),
        ]
        key_cap = budget.key_spend_cap if principal.api_key_id else None
        args: list[str | int | float] = [
            inputs,
            per_key,
            per_key / window,
            per_org,
            per_org / window,
            _num(budget.hard_limit),
            _num(budget.org_units),
            _num(budget.key_units),
            _num(budget.unit_price),
            _num(budget.included_units),
            _num(budget.org_spend_cap),
            _num(budget.org_spent),
            _num(budget.org_units),
            _num(key_cap),
            _num(budget.key_spent),
            _num(budget.key_units),
            COUNTER_TTL_SECONDS,
        ]
        raw = await self._admits.submit((keys, args))
        if int(raw[0]) == 1:
            rem_k, full_k, rem_o, full_o = (int(x) for x in raw[1:5])
            # Report the bucket with the fewest tokens left relative to its size.
            if rem_k / per_key <= rem_o / per_org:
                limit, remaining, to_full = per_key, rem_k, full_k
            else:
                limit, remaining, to_full = per_org, rem_o, full_o
            return Admitted(
                organization_id=principal.organization_id,
                principal=principal.principal,
                month=budget.month,
                inputs=inputs,
                limit=limit,
                remaining=remaining,
                reset_seconds=math.ceil(to_full / 1000),
            )
        reason = raw[1].decode() if isinstance(raw[1], bytes) else str(raw[1])
        if reason == "quota":
            figure = str(int(raw[2]))  # the month's count so far
        else:
            figure = raw[3].decode() if isinstance(raw[3], bytes) else str(raw[3])
        return Refused(
            reason=reason,
            retry_after_seconds=max(1, math.ceil(int(raw[2]) / 1000)) if reason == "rate" else 0,
            figure=figure,
            limit=min(per_key, per_org),
        )

    async def commit(self, item: CommitItem) -> int:
        """Count an answered request in the current metering window through redis-py (the
        :class:`CommitWriter`'s fallback; coalesced); returns the window."""
        return int(await self._commits.submit(item.args()))

    async def release(self, admitted: Admitted) -> None:
        """Give back an admitted request's reservation (it failed: nothing is billed)."""
        await self._release(
            keys=_counter_keys(admitted.organization_id, admitted.principal, admitted.month),
            args=[admitted.inputs],
        )
