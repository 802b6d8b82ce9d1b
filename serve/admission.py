"""Admission in Redis: one Lua call admits a request (concurrent requests share it,
:class:`Coalescer`); its count is committed by ``serve.commits`` once answered.

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

Counters are seeded from the ledger snapshot when absent (a new month, or an empty
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
import logging
import math
import secrets
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from saas.inference.selectors import PredictionBudget, ServingPrincipal
from saas.metering.windows import INDEX_KEY, WINDOW_SECONDS

from .commits import COMMIT_SCRIPT, MARK_PREFIX, MARK_TTL_SECONDS, CommitItem

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


def _seed(units) -> int:
    # A month counter's seed must be an integer (the script INCRBYs it); the ledger's
    # quantities are Decimals with six places ("30.000000"). Rounded up: errs on the safe side.
    return math.ceil(units)


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
        self._commit_script = client.register_script(COMMIT_SCRIPT)
        self._release = client.register_script(_RELEASE)
        self._admits = Coalescer(self._admit_group)
        self._commits = Coalescer(self._commit_group)

    async def _admit_group(self, items: list[tuple[list[str], list[str | int | float]]]) -> list:
        keys = [k for ks, _ in items for k in ks]
        args = [a for _, as_ in items for a in as_]
        raw = await self._admit_script(keys=keys, args=args)
        return [raw[5 * i : 5 * i + 5] for i in range(len(items))]

    async def _commit_group(self, items: list[list[str | int]]) -> list[int]:
        # A fresh writer id per group, sequence 1: redis-py's retries of this one call (after
        # a lost reply) are then skipped by the script if an earlier attempt was applied.
        group = "f" + secrets.token_hex(8)
        args: list[str | int | float] = [WINDOW_SECONDS, group, 1]
        for item in items:
            args.extend(item)
        try:
            window = int(await self._commit_script(keys=[INDEX_KEY], args=args))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # Its last reply lost: Redis may have applied it. Setting the group's mark (when
            # absent) tells which, and fences it off: no late copy of it can apply now.
            try:
                fenced = await self.client.set(MARK_PREFIX + group, 1, nx=True, ex=MARK_TTL_SECONDS)
            except RedisError:
                raise exc from None  # unknown: the caller counts it elsewhere (see commits)
            if fenced:
                raise  # not applied, and now never: the caller counts it elsewhere
            window = 0  # applied before the reply was lost
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
            _seed(budget.org_units),
            _seed(budget.key_units),
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
        :class:`CommitWriter`'s fallback; coalesced, idempotent across redis-py's retries);
        returns the window (0 when a retry found its group already applied). Raises
        ``redis`` errors."""
        return int(await self._commits.submit(item.args()))

    async def release(self, admitted: Admitted) -> None:
        """Give back an admitted request's reservation (it failed: nothing is billed)."""
        await self._release(
            keys=_counter_keys(admitted.organization_id, admitted.principal, admitted.month),
            args=[admitted.inputs],
        )
