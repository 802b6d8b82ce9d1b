"""Per-tenant and per-model concurrency inside one ``serve`` process, decided before a
request's body is read.

- In flight: at most ``tenant_inflight`` requests of one organisation (429) and
  ``model_inflight`` of one model (503) per process.
- Work: while other tenants have requests here, one tenant's requests being worked on weigh at
  most ``tenant_active_bytes`` (their ``Content-Length``); later ones wait, unread, so a flood of
  heavy requests queues behind itself at the TCP level instead of taking the process's CPU
  from the others. A tenant alone is not held back, and a request alone always goes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from saas.inference.selectors import ServingPrincipal

from . import metrics
from .config import ServeConfig
from .errors import Problem


class TenantGate:
    """The counts of one process (event-loop confined: no locks)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._tenant_inflight: dict[str, int] = {}
        self._model_inflight: dict[str, int] = {}
        self._active_bytes: dict[str, int] = {}
        self._waiters: dict[str, deque[tuple[int, asyncio.Future]]] = {}

    @asynccontextmanager
    async def request(
        self, principal: ServingPrincipal, model_id: str, weight: int, started: float
    ) -> AsyncIterator[None]:
        """Hold a place for one request for the ``with`` block: :meth:`enter`, then
        :meth:`wait_turn`; both are given back however the block ends. Raises their
        :class:`Problem` (429 / 503) before the block runs."""
        self.enter(principal, model_id)
        taken = 0
        try:
            taken = await self.wait_turn(principal, weight, started)
            yield
        finally:
            if taken:
                self.done(principal, taken)
            self.leave(principal, model_id)

    def enter(self, principal: ServingPrincipal, model_id: str) -> None:
        """Count a request in flight for its tenant and model, or refuse it (429 / 503)
        before its body is read."""
        org = principal.organization_id
        if self._tenant_inflight.get(org, 0) >= self.config.tenant_inflight:
            metrics.REFUSALS.labels(reason="tenant_concurrency").inc()
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                f"At most {self.config.tenant_inflight} requests of one organisation in flight "
                "per replica; retry shortly.",
                headers={"Retry-After": "1"},
            )
        if self._model_inflight.get(model_id, 0) >= self.config.model_inflight:
            metrics.REFUSALS.labels(reason="model_concurrency").inc()
            raise Problem(
                503,
                "service-unavailable",
                "The model is overloaded",
                f"At most {self.config.model_inflight} requests per model in flight per replica; "
                "retry shortly.",
                headers={"Retry-After": "1"},
            )
        self._tenant_inflight[org] = self._tenant_inflight.get(org, 0) + 1
        self._model_inflight[model_id] = self._model_inflight.get(model_id, 0) + 1

    def leave(self, principal: ServingPrincipal, model_id: str) -> None:
        org = principal.organization_id
        self._tenant_inflight[org] -= 1
        if not self._tenant_inflight[org]:
            del self._tenant_inflight[org]
            for other in list(self._waiters):  # one tenant fewer: others may fit now
                self._wake(other)
        self._model_inflight[model_id] -= 1
        if not self._model_inflight[model_id]:
            del self._model_inflight[model_id]

    def _fits(self, org: str, active: int, weight: int) -> bool:
        # Alone on this replica a tenant is not held back (nobody to protect, and its big
        # requests batch together); with others in flight, its work is bounded by bytes.
        return (
            active == 0
            or active + weight <= self.config.tenant_active_bytes
            or len(self._tenant_inflight) <= 1
        )

    async def wait_turn(self, principal: ServingPrincipal, weight: int, started: float) -> int:
        """Wait, before the body is read, while other tenants have requests in flight here and
        this tenant's requests being worked on would weigh over ``tenant_active_bytes`` with
        this one (a request alone always fits). Returns the weight taken, for :meth:`done`. A
        tenant flooding big requests thus queues behind itself at the TCP level, unread,
        instead of taking the process's CPU from the others; its wait counts towards the
        deadline (429 when it runs out)."""
        org = principal.organization_id
        weight = max(1, weight)
        active = self._active_bytes.get(org, 0)
        waiters = self._waiters.setdefault(org, deque())
        if not waiters and self._fits(org, active, weight):
            self._active_bytes[org] = active + weight
            return weight
        fut = asyncio.get_running_loop().create_future()
        waiters.append((weight, fut))
        try:
            await asyncio.wait_for(
                fut, timeout=max(0.001, started + self.config.deadline_s - time.monotonic())
            )
        except TimeoutError:
            metrics.REFUSALS.labels(reason="tenant_concurrency").inc()
            raise Problem(
                429,
                "rate-limited",
                "Too many requests",
                "This organisation's requests in flight on this replica are too heavy to take "
                "another before its deadline; retry shortly.",
                headers={"Retry-After": "1"},
            ) from None
        finally:
            if (weight, fut) in waiters:
                waiters.remove((weight, fut))
        return weight

    def done(self, principal: ServingPrincipal, weight: int) -> None:
        """Give back what :meth:`wait_turn` took and wake the tenant's next waiters that fit."""
        org = principal.organization_id
        active = self._active_bytes.get(org, 0) - weight
        if active > 0:
            self._active_bytes[org] = active
        else:
            self._active_bytes.pop(org, None)
        self._wake(org)

    def _wake(self, org: str) -> None:
        waiters = self._waiters.get(org)
        active = self._active_bytes.get(org, 0)
        while waiters:
            w, fut = waiters[0]
            if fut.done():
                waiters.popleft()
                continue
            if not self._fits(org, active, w):
                break
            waiters.popleft()
            active += w
            fut.set_result(None)
        if active > 0:
            self._active_bytes[org] = active
        if waiters is not None and not waiters:
            self._waiters.pop(org, None)
