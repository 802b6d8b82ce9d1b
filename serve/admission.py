"""Admission and metering in Redis: one Lua call admits a request, one commits its count.

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
requests at a quota's edge can never overshoot it: each sees the others' reservations. After
the answer, ``commit`` adds the count to the current metering window
(``saas.metering.windows``); a failed request calls ``release`` instead, giving the reservation
back. Counters are seeded from the ledger snapshot when absent (a new month, or an empty
Redis). A ``serve`` killed between admit and commit leaves its in-flight reservations on the
counters until the month ends: the quota errs on the safe side by at most the requests in
flight at the kill, and the ledger (which only committed counts reach) is exact.

The token bucket with a cost per request is the classic algorithm (Tanenbaum, *Computer
Networks*, §5.4; Stripe's and GitHub's API limiters weigh requests the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

from saas.inference.selectors import PredictionBudget, ServingPrincipal
from saas.metering.windows import INDEX_KEY, SEP, WINDOW_SECONDS

COUNTER_TTL_SECONDS = 40 * 24 * 3600  # outlives its month

# KEYS: 1 key bucket, 2 org bucket, 3 org month counter, 4 key month counter.
# ARGV: 1 n, 2 cap_k, 3 rate_k, 4 cap_o, 5 rate_o, 6 hard limit (-1: none), 7 org seed,
#       8 key seed, 9 unit price, 10 included, 11 org cap (-1), 12 org spent, 13 org units,
#       14 key cap (-1), 15 key spent, 16 key units, 17 counter ttl.
# Returns {1, remaining_k, to_full_k_ms, remaining_o, to_full_o_ms} when admitted, else
# {0, reason, retry_ms or used, limit-ish figure as a string}.
_ADMIT = """
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local have = {}
local caps = {tonumber(ARGV[2]), tonumber(ARGV[4])}
local rates = {tonumber(ARGV[3]), tonumber(ARGV[5])}
local retry = 0
for i = 1, 2 do
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
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
    redis.call('HSET', KEYS[i], 'tokens', have[i], 'ts', now)
    redis.call('PEXPIRE', KEYS[i], math.ceil(caps[i] / rates[i] * 1000) + 1000)
  end
  return {0, 'rate', retry, tostring(math.floor(math.min(have[1], have[2])))}
end
local ttl = tonumber(ARGV[17])
local used = tonumber(redis.call('GET', KEYS[3]))
if not used then
  used = tonumber(ARGV[7])
  redis.call('SET', KEYS[3], ARGV[7], 'EX', ttl)
end
local kused = tonumber(redis.call('GET', KEYS[4]))
if not kused then
  kused = tonumber(ARGV[8])
  redis.call('SET', KEYS[4], ARGV[8], 'EX', ttl)
end
local hard = tonumber(ARGV[6])
if hard >= 0 and used + n > hard then
  return {0, 'quota', math.floor(used), ARGV[6]}
end
local price = tonumber(ARGV[9])
local included = tonumber(ARGV[10])
local org_cap = tonumber(ARGV[11])
if org_cap >= 0 then
  local base = tonumber(ARGV[12])
  local base_units = math.max(0, tonumber(ARGV[13]) - included)
  local before = base + price * (math.max(0, used - included) - base_units)
  local after = base + price * (math.max(0, used + n - included) - base_units)
  if before >= org_cap or after > org_cap + 1e-9 then
    return {0, 'org_cap', 0, string.format('%.6f', before)}
  end
end
local key_cap = tonumber(ARGV[14])
if key_cap >= 0 then
  local before = tonumber(ARGV[15]) + price * (kused - tonumber(ARGV[16]))
  local after = before + price * n
  if before >= key_cap or after > key_cap + 1e-9 then
    return {0, 'key_cap', 0, string.format('%.6f', before)}
  end
end
local out = {1}
for i = 1, 2 do
  local left = have[i] - n
  redis.call('HSET', KEYS[i], 'tokens', left, 'ts', now)
  redis.call('PEXPIRE', KEYS[i], math.ceil(caps[i] / rates[i] * 1000) + 1000)
  table.insert(out, math.floor(left))
  table.insert(out, math.ceil((caps[i] - left) / rates[i] * 1000))
end
redis.call('INCRBY', KEYS[3], n)
redis.call('INCRBY', KEYS[4], n)
return out
"""

# KEYS: 1 the window index. ARGV: 1 group prefix (org|principal|model|), 2 n, 3 micros,
# 4 cold (0/1), 5 window seconds. Returns the window number.
_COMMIT = """
local t = redis.call('TIME')
local w = math.floor(tonumber(t[1]) / tonumber(ARGV[5]))
local k = 'dp:mw:' .. w
redis.call('HINCRBY', k, ARGV[1] .. 'n', ARGV[2])
redis.call('HINCRBY', k, ARGV[1] .. 'r', 1)
redis.call('HINCRBY', k, ARGV[1] .. 'us', ARGV[3])
if tonumber(ARGV[4]) > 0 then redis.call('HINCRBY', k, ARGV[1] .. 'cold', 1) end
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


class Admission:
    """The three scripts, bound to one ``redis.asyncio.Redis`` client.

    Every method is one round trip and raises ``redis`` errors (the caller answers 503: a
    request that cannot be metered is not served).
    """

    def __init__(self, client: Redis, *, rate_window_seconds: float) -> None:
        self.client = client
        self.rate_window_seconds = rate_window_seconds
        self._admit = client.register_script(_ADMIT)
        self._commit = client.register_script(_COMMIT)
        self._release = client.register_script(_RELEASE)

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
        raw = await self._admit(keys=keys, args=args)
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
        figure = raw[3].decode() if isinstance(raw[3], bytes) else str(raw[3])
        return Refused(
            reason=reason,
            retry_after_seconds=max(1, math.ceil(int(raw[2]) / 1000)) if reason == "rate" else 0,
            figure=figure,
            limit=min(per_key, per_org),
        )

    async def commit(
        self, admitted: Admitted, *, model_id: str, micros: int, cold_start: bool
    ) -> int:
        """Count an answered request in the current metering window; returns the window."""
        prefix = SEP.join((admitted.organization_id, admitted.principal, model_id)) + SEP
        return int(
            await self._commit(
                keys=[INDEX_KEY],
                args=[
                    prefix,
                    admitted.inputs,
                    max(0, int(micros)),
                    int(cold_start),
                    WINDOW_SECONDS,
                ],
            )
        )

    async def release(self, admitted: Admitted) -> None:
        """Give back an admitted request's reservation (it failed: nothing is billed)."""
        await self._release(
            keys=_counter_keys(admitted.organization_id, admitted.principal, admitted.month),
            args=[admitted.inputs],
        )
