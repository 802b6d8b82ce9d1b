"""Who is calling, without a database round trip on the hot path.

API keys (``Authorization: Bearer ty_live_…``) are resolved once per replica from PostgreSQL
(``saas.inference.selectors``) and kept in memory by the SHA-256 of the presented secret. A
background loop re-reads every cached key — revocation, expiry, scopes, the creator's role,
the organisation's suspension and plan limits — every ``auth_refresh_s`` (0.5 s) in three
queries whatever the number of keys, so a revoked key or a suspended organisation is refused
by every replica within about half a second plus one query. If the database cannot be reached,
entries are trusted for at most ``auth_max_stale_s`` and then re-read on the request (503 if
that fails too): a stale cache never outlives an outage silently.

Unknown or malformed keys are cached as refusals for ``NEGATIVE_TTL_SECONDS`` so that a client
retrying a bad key in a loop costs one query a second, not one a request.

Dashboard users predicting through "try it" come with a short-lived token signed by the
control plane (``saas.inference.client``), resolved the same way by (organisation, user).

Month-to-date budgets (``PredictionBudget``) are cached per (organisation, key) and refreshed
every ``budget_refresh_s`` while in use; they are a snapshot the admission script adds the
live Redis counters to, so their age only delays seeing *other* spend (training, storage).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.db import close_old_connections, connection

from saas.inference import client as internal
from saas.inference import selectors
from saas.inference.selectors import PredictionBudget, ServingPrincipal

from .config import ServeConfig
from .errors import Problem, unauthenticated

log = logging.getLogger(__name__)

NEGATIVE_TTL_SECONDS = 1.0
NEGATIVE_MAX = 10_000
IDLE_EVICT_SECONDS = 600.0
BUDGET_IDLE_SECONDS = 60.0
KEY_PREFIX = "ty_live_"
T = TypeVar("T")


class Database:
    """Blocking Django ORM work, off the event loop, in a small pool of its own (so a slow
    query never takes a model-execution thread). Each call starts and ends with Django's
    ``close_old_connections`` (honours ``CONN_MAX_AGE``, drops broken connections)."""

    def __init__(self, threads: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="serve-db")

    async def run(self, fn: Callable[..., T], /, **kwargs: Any) -> T:
        def call() -> T:
            close_old_connections()
            try:
                return fn(**kwargs)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class _Entry:
    principal: ServingPrincipal | None  # None: revoked, expired or gone
    reason: str
    refreshed_at: float
    used_at: float


@dataclass
class _Budget:
    budget: PredictionBudget
    refreshed_at: float
    used_at: float
    refreshing: bool = False


def _ping() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class AuthCache:
    """Principals and budgets for the data plane (one per process).

    Raises :class:`~serve.errors.Problem` from :meth:`authenticate` (401 for a missing,
    malformed, unknown, expired or revoked credential; 503 when the database is needed and
    unreachable). Call :meth:`run` as a background task.
    """

    def __init__(self, config: ServeConfig, db: Database) -> None:
        self.config = config
        self.db = db
        self._keys: dict[str, _Entry] = {}  # digest -> entry
        self._users: dict[tuple[str, int], _Entry] = {}
        self._negative: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._budgets: dict[tuple[str, str | None], _Budget] = {}
        self._loading: dict[str, asyncio.Future] = {}
        self.last_refresh_ok = 0.0
        self.last_error: str | None = None
        #: The last refresh failure's exception class (readiness names it; the text may carry
        #: a connection string), None once a refresh succeeds again.
        self.last_error_type: str | None = None

    # --- the request path ------------------------------------------------------------------

    async def authenticate(self, authorization: str | None) -> ServingPrincipal:
        """The principal behind an ``Authorization`` header value."""
        if not authorization:
            raise unauthenticated("Send Authorization: Bearer <API key>.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "internal":
            return await self._internal(token)
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("Send Authorization: Bearer <API key>.")
        if not token.startswith(KEY_PREFIX) or len(token) > 128:
            raise unauthenticated("malformed API key")
        now = time.monotonic()
        digest = _digest(token)
        entry = self._keys.get(digest)
        if entry is None:
            neg = self._negative.get(digest)
            if neg is not None and neg[0] > now:
                raise unauthenticated(neg[1])
            entry = await self._load_key(digest, token)
        elif now - entry.refreshed_at > self.config.auth_max_stale_s:
            entry = await self._load_key(digest, token)  # the refresher is behind: re-read
        entry.used_at = now
        if entry.principal is None:
            raise unauthenticated(entry.reason)
        expires_at = entry.principal.expires_at
        if expires_at is not None and expires_at <= datetime.now(UTC):
            # Expiry is known in advance: refuse from that instant, not from the next refresh.
            raise unauthenticated("API key expired")
        return entry.principal

    async def _load_key(self, digest: str, token: str) -> _Entry:
        # Single flight: concurrent first requests with the same key share one lookup.
        pending = self._loading.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_key(digest, token))
            self._loading[digest] = pending
            pending.add_done_callback(lambda _f: self._loading.pop(digest, None))
        return await asyncio.shield(pending)

    async def _fetch_key(self, digest: str, token: str) -> _Entry:
        try:
            found = await self.db.run(selectors.serving_principal_for_token, raw=token)
        except Exception as exc:
            log.warning("API key lookup failed: %s", exc)
            raise Problem(
                503,
                "service-unavailable",
                "The data plane cannot check credentials",
                "Credentials cannot be checked right now (database unreachable); retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        now = time.monotonic()
        if isinstance(found, str):
            self._negative[digest] = (now + NEGATIVE_TTL_SECONDS, found)
            while len(self._negative) > NEGATIVE_MAX:
                self._negative.popitem(last=False)
            self._keys.pop(digest, None)
            return _Entry(principal=None, reason=found, refreshed_at=now, used_at=now)
        entry = _Entry(principal=found, reason="", refreshed_at=now, used_at=now)
        self._keys[digest] = entry
        return entry

    async def _internal(self, token: str) -> ServingPrincipal:
        claim = internal.internal_token_verify(token)
        if claim is None:
            raise unauthenticated("invalid or expired internal token")
        org_id, user_id = claim
        now = time.monotonic()
        entry = self._users.get((org_id, user_id))
        if entry is None or now - entry.refreshed_at > self.config.auth_max_stale_s:
            try:
                found = await self.db.run(
                    selectors.serving_user_principal, organization_id=org_id, user_id=user_id
                )
            except Exception:
                raise Problem(
                    503,
                    "service-unavailable",
                    "The data plane cannot check credentials",
                    "Credentials cannot be checked right now; retry shortly.",
                ) from None
            entry = _Entry(principal=found, reason="not a member", refreshed_at=now, used_at=now)
            self._users[(org_id, user_id)] = entry
        entry.used_at = now
        if entry.principal is None:
            raise unauthenticated("you are no longer a member of this organisation")
        return entry.principal

    async def budget(self, principal: ServingPrincipal) -> PredictionBudget:
        """The month-to-date budget snapshot for ``principal`` (loaded on first use)."""
        key = (principal.organization_id, principal.api_key_id)
        now = time.monotonic()
        cached = self._budgets.get(key)
        if cached is not None and cached.budget.month == time.strftime("%Y%m", time.gmtime()):
            cached.used_at = now
            return cached.budget
        try:
            budget = await self.db.run(
                selectors.prediction_budget,
                organization_id=principal.organization_id,
                api_key_id=principal.api_key_id,
            )
        except Exception as exc:
            log.warning("budget read failed: %s", exc)
            raise Problem(
                503,
                "service-unavailable",
                "The data plane cannot check billing limits",
                "Billing limits cannot be read right now; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        self._budgets[key] = _Budget(budget=budget, refreshed_at=now, used_at=now)
        return budget

    # --- the background refresh ------------------------------------------------------------

    async def refresh_once(self) -> None:
        """Re-read every cached key and user (three queries for all keys); evict idle ones."""
        now = time.monotonic()
        for digest in [d for d, e in self._keys.items() if now - e.used_at > IDLE_EVICT_SECONDS]:
            self._keys.pop(digest, None)
        for k in [k for k, e in self._users.items() if now - e.used_at > IDLE_EVICT_SECONDS]:
            self._users.pop(k, None)
        ids = {e.principal.api_key_id: d for d, e in self._keys.items() if e.principal}
        if not ids:
            await self.db.run(_ping)  # readiness: the database is reachable even with no keys
        fresh = await self.db.run(selectors.serving_principals, api_key_ids=list(ids))
        done = time.monotonic()
        for key_id, digest in ids.items():
            entry = self._keys.get(digest)
            if entry is None:
                continue
            entry.principal = fresh.get(key_id)  # type: ignore[arg-type]
            entry.reason = "API key revoked or expired"
            entry.refreshed_at = done
        for (org_id, user_id), entry in list(self._users.items()):
            entry.principal = await self.db.run(
                selectors.serving_user_principal, organization_id=org_id, user_id=user_id
            )
            entry.refreshed_at = time.monotonic()
        self.last_refresh_ok = time.monotonic()

    async def refresh_budgets_once(self) -> None:
        """Re-read the budgets used in the last minute, one organisation/key at a time."""
        now = time.monotonic()
        for key, cached in list(self._budgets.items()):
            if now - cached.used_at > BUDGET_IDLE_SECONDS:
                self._budgets.pop(key, None)
                continue
            if now - cached.refreshed_at < self.config.budget_refresh_s:
                continue
            budget = await self.db.run(
                selectors.prediction_budget, organization_id=key[0], api_key_id=key[1]
            )
            self._budgets[key] = _Budget(
                budget=budget, refreshed_at=time.monotonic(), used_at=cached.used_at
            )

    async def run(self) -> None:
        """Refresh forever (a background task of the app's lifespan)."""
        next_budget = 0.0
        while True:
            try:
                await self.refresh_once()
                if time.monotonic() >= next_budget:
                    await self.refresh_budgets_once()
                    next_budget = time.monotonic() + min(1.0, self.config.budget_refresh_s)
                self.last_error = self.last_error_type = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database down: keep serving within the staleness bound
                self.last_error = str(exc)
                self.last_error_type = type(exc).__name__
                log.warning("auth cache refresh failed: %s", exc)
            await asyncio.sleep(self.config.auth_refresh_s)
