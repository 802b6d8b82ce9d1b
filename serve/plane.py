"""The data plane's request pipeline, shared by the v1 predict route and the OIP v2 routes.

One :class:`Plane` per process holds the caches (keys, models, budgets), the Redis admission
scripts, the model store and the scheduler, and runs the background loops (auth refresh,
metering flush, pre-warm). :meth:`Plane.predict` is the hot path: in-memory auth, the model's
metadata from memory, one Redis call to admit, the model, one Redis call to commit.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings

from saas.common.ids import new_id
from saas.inference import selectors
from saas.inference.selectors import ServingModel, ServingPrincipal
from saas.registry.services import EVICT_CHANNEL, PREWARM_CHANNEL
from saas.tenancy.access import SUSPENDED_DETAIL

from . import metrics, replica_stats
from .admission import Admission, Admitted, Refused
from .auth import AuthCache, Database
from .commits import CommitItem, CommitWriter
from .config import ServeConfig
from .errors import Problem, not_found
from .gate import TenantGate
from .responses import until_disconnected
from .runtime import InputError, ModelStore, Scheduler

log = logging.getLogger(__name__)

MODEL_TTL_SECONDS = 60.0
MODEL_NEGATIVE_TTL_SECONDS = 1.0


@dataclass(frozen=True)
class Answer:
    """A served prediction: what the routes render. Not counted until :attr:`commit` is
    called, which the routes do once the response has been written."""

    id: str
    model: ServingModel
    predictions: list[dict[str, Any]]
    inference_ms: float
    cold_start: bool
    headers: dict[str, str]
    #: Count the answer: call right after its last byte is written (``serve.admission``).
    commit: Callable[[], None] = field(repr=False, default=lambda: None)
    #: Give the reservation back instead (the client went away before the answer).
    release: Callable[[], Awaitable[None]] = field(repr=False, default=None)  # type: ignore[assignment]


class Plane:
    """Everything one ``serve`` process holds. Create inside the running event loop."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.db = Database()
        self.auth = AuthCache(config, self.db)
        if not settings.REDIS_URL:
            raise RuntimeError(
                "serve needs REDIS_URL: admission and metering counts live in Redis."
            )
        self.redis = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )
        self.admission = Admission(
            self.redis, rate_window_seconds=float(settings.TRAINYARD_RATE_LIMIT_WINDOW_SECONDS)
        )
        self.commits = CommitWriter(settings.REDIS_URL, fallback=self._commit_fallback)
        self.store = ModelStore(config.cache_bytes)
        self.scheduler = Scheduler(config)
        self._models: dict[str, tuple[ServingModel | None, float]] = {}
        self.gate = TenantGate(config)
        self._tasks: list[asyncio.Task] = []
        self.last_flush_ok = 0.0

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        # Django, the ORM and their imports are long-lived too (see ModelStore.get).
        gc.collect()
        gc.freeze()
        try:
            await self.commits.start(self.redis)
        except Exception as exc:  # Redis down at start: readiness says so; commits fall back
            log.warning("metering commit writer not started: %s", exc)
        self._tasks = [
            asyncio.create_task(self.auth.run(), name="auth-refresh"),
            asyncio.create_task(self._flush_loop(), name="metering-flush"),
            asyncio.create_task(self._prewarm_loop(), name="prewarm"),
            asyncio.create_task(replica_stats.publish_loop(self), name="replica-stats"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._flush()  # what this replica committed, before it goes
        except Exception as exc:
            log.warning("final flush failed (the next replica or beat will do it): %s", exc)
        await self.commits.stop()
        await self.redis.aclose()
        self.db.shutdown()

    # --- lookups -------------------------------------------------------------------------

    async def model_for(self, principal: ServingPrincipal, model_id: str) -> ServingModel:
        """The caller's model; another tenant's or a missing one is the same 404."""
        if not model_id.startswith("mdl_") or len(model_id) > 32:
            raise not_found()
        now = time.monotonic()
        cached = self._models.get(model_id)
        if cached is None or cached[1] < now:
            try:
                found = await self.db.run(selectors.serving_model, model_id=model_id)
            except Exception:
                raise Problem(
                    503,
                    "service-unavailable",
                    "The data plane cannot look up models",
                    "Model metadata cannot be read right now; retry shortly.",
                    headers={"Retry-After": "1"},
                ) from None
            ttl = MODEL_TTL_SECONDS if found else MODEL_NEGATIVE_TTL_SECONDS
            cached = (found, now + ttl)
            self._models[model_id] = cached
        model = cached[0]
        if model is None or model.organization_id != principal.organization_id:
            raise not_found()
        return model

    @staticmethod
    def check_access(principal: ServingPrincipal) -> None:
        if principal.denial:
            metrics.REFUSALS.labels(reason="forbidden").inc()
            raise Problem(403, "forbidden", "Forbidden", principal.denial)
        if principal.suspended:
            metrics.REFUSALS.labels(reason="forbidden").inc()
            raise Problem(
                403, "organization-suspended", "The organisation is suspended", SUSPENDED_DETAIL
            )

    # --- the hot path --------------------------------------------------------------------

    async def predict(
        self,
        *,
        principal: ServingPrincipal,
        model: ServingModel,
        inputs: list[bytes],
        started: float,
        receive=None,
    ) -> Answer:
        """Admit, run and meter ``inputs`` (already validated) for ``principal``.

        ``started`` is the request's ``time.monotonic()`` on arrival; the deadline counts from
        it. Raises :class:`Problem`: 429 (rate limit), 402 (quota or spend cap), 503 (Redis
        unreachable, model not loadable), 504 (deadline), 400 (an input the model cannot
        decode). Only a request that is answered is counted.
        """
        budget = await self.auth.budget(principal)
        try:
            decision = await self.admission.admit(
                principal=principal, budget=budget, inputs=len(inputs)
            )
        except Exception as exc:
            log.warning("admission failed: %s", exc)
            raise _redis_down() from None
        if isinstance(decision, Refused):
            metrics.REFUSALS.labels(reason=decision.reason).inc()
            raise _refusal(decision, budget)
        try:
            deadline = started + self.config.deadline_s
            loaded, cold = await asyncio.wait_for(
                self.store.get(model), timeout=max(0.001, deadline - time.monotonic())
            )
            work = self.scheduler.run(
                model=model,
                loaded=loaded,
                organization_id=principal.organization_id,
                inputs=inputs,
            )
            remaining = max(0.001, deadline - time.monotonic())
            if receive is not None and self.scheduler.backlog(model.id) >= self.config.max_batch:
                # It will wait behind at least one execution: give it up, unrun, if its client
                # goes away meanwhile (a flood whose clients time out must not keep the CPU).
                execution = await _unless_disconnected(receive, work, remaining)
            else:
                execution = await asyncio.wait_for(work, timeout=remaining)
        except BaseException as exc:
            await self._release(decision)
            if isinstance(exc, TimeoutError):
                metrics.REFUSALS.labels(reason="deadline").inc()
                raise Problem(
                    504,
                    "deadline-exceeded",
                    "The prediction took too long",
                    f"No answer within {self.config.deadline_s:g} s; nothing was billed.",
                ) from None
            if isinstance(exc, InputError):
                raise Problem(
                    400,
                    "validation-failed",
                    "The request did not pass validation",
                    "An input could not be decoded by the model.",
                    errors=[{"field": "inputs", "message": str(exc)}],
                ) from None
            if isinstance(exc, Problem | asyncio.CancelledError):
                raise
            log.exception("model execution failed")
            raise Problem(
                502,
                "worker-error",
                "The model could not run",
                "The model failed on these inputs; nothing was billed.",
            ) from None
        prediction_id = new_id("pred")
        item = CommitItem(
            organization_id=decision.organization_id,
            principal=decision.principal,
            model_id=model.id,
            inputs=decision.inputs,
            micros=execution.micros_share,
            cold_start=cold,
            prediction_id=prediction_id,
        )
        return Answer(
            commit=lambda: self.commits.write(item),
            release=lambda: self._release(decision),
            id=prediction_id,
            model=model,
            predictions=execution.predictions,
            inference_ms=round(execution.seconds * 1000, 3),
            cold_start=cold,
            headers=decision.headers(),
        )

    async def _commit_fallback(self, item: CommitItem) -> None:
        """A commit the writer could not make: through redis-py, else straight to the ledger."""
        try:
            await self.admission.commit(item)
            return
        except Exception as exc:
            log.warning("metering commit through redis-py failed: %s", exc)
        from saas.inference.services import prediction_usage_record

        try:
            await self.db.run(
                prediction_usage_record,
                organization_id=item.organization_id,
                principal=item.principal,
                model_id=item.model_id,
                inputs=item.inputs,
                micros=item.micros,
                prediction_id=item.prediction_id,
            )
        except Exception:
            log.exception("LOST a metering count: %s", item)

    async def _release(self, decision: Admitted) -> None:
        try:
            await self.admission.release(decision)
        except Exception as exc:  # the reservation stays: the quota errs on the safe side
            log.warning("releasing a reservation failed: %s", exc)

    # --- background loops ----------------------------------------------------------------

    async def _flush(self) -> int:
        from saas.inference.services import prediction_windows_flush

        written = await self.db.run(prediction_windows_flush)
        metrics.FLUSHED_EVENTS.inc(written)
        self.last_flush_ok = time.monotonic()
        return written

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush_interval_s)
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # nothing lost: the windows stay in Redis
                log.warning("metering flush failed: %s", exc)

    async def evict(self, model_id: str) -> None:
        """Stop serving ``model_id`` (deleted): its metadata is forgotten (the next request
        reads the row again, finds it deleted and answers 404), it leaves memory and its
        extracted files are removed."""
        self._models.pop(model_id, None)
        await self.store.evict(model_id)
        log.info("evicted deleted model %s", model_id)

    async def _prewarm_loop(self) -> None:
        """Load models announced on ``dp:prewarm`` (a new model's id), if they fit, and evict
        those announced on ``dp:evict`` (a deleted model's id)."""
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(PREWARM_CHANNEL, EVICT_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    model_id = message["data"].decode()
                    if message["channel"].decode() == EVICT_CHANNEL:
                        await self.evict(model_id)
                        continue
                    model = await self.db.run(selectors.serving_model, model_id=model_id)
                    if model is not None and model.artifact_bytes <= self.config.cache_bytes:
                        try:
                            await self.store.get(model)
                            log.info("pre-warmed %s", model_id)
                        except Problem as exc:
                            log.warning("pre-warming %s failed: %s", model_id, exc.detail)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pre-warm subscription lost: %s; retrying", exc)
                await asyncio.sleep(2)


async def _unless_disconnected(receive, work, timeout: float):
    """``work``'s result, unless the client disconnects first (then ``work`` is cancelled and
    a 499 problem raised) or ``timeout`` passes (``TimeoutError``)."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(until_disconnected(receive))
    try:
        done, _pending = await asyncio.wait(
            {task, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        watch.cancel()
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    if watch in done:
        metrics.REFUSALS.labels(reason="client_gone").inc()
        raise Problem(499, "client-closed-request", "Client closed request", "Not run.")
    raise TimeoutError


def _redis_down() -> Problem:
    return Problem(
        503,
        "service-unavailable",
        "The data plane cannot meter this request",
        "Admission and metering are unavailable (Redis unreachable); nothing was billed. "
        "Retry shortly.",
        headers={"Retry-After": "1"},
    )


def _refusal(refused: Refused, budget) -> Problem:
    resets_on = _next_month(budget.month)
    if refused.reason == "rate":
        return Problem(
            429,
            "rate-limited",
            "Too many requests",
            f"Prediction rate limit of {refused.limit} inputs per "
            f"{settings.TRAINYARD_RATE_LIMIT_WINDOW_SECONDS} s reached; retry in "
            f"{refused.retry_after_seconds} s.",
            headers={
                "Retry-After": str(refused.retry_after_seconds),
                "RateLimit-Limit": str(refused.limit),
                "RateLimit-Remaining": refused.figure,
                "RateLimit-Reset": str(refused.retry_after_seconds),
            },
        )
    if refused.reason == "quota":
        return Problem(
            402,
            "payment-required",
            "A billing limit was reached",
            f"Your plan includes {budget.hard_limit.normalize():f} predictions a month; "
            f"{refused.figure} are used. The quota resets on {resets_on}; upgrade to continue now.",
            meter="predictions",
            limit=f"{budget.hard_limit.normalize():f}",
            used=refused.figure,
            resets_on=resets_on,
        )
    which = "organisation's" if refused.reason == "org_cap" else "API key's"
    cap = budget.org_spend_cap if refused.reason == "org_cap" else budget.key_spend_cap
    return Problem(
        402,
        "payment-required",
        "A billing limit was reached",
        f"This {which} monthly spend cap of {cap} is reached or would be passed by this "
        f"request ({refused.figure} spent); it resets on {resets_on}.",
        limit=str(cap),
        spent=refused.figure,
        remaining="0",
        resets_on=resets_on,
    )


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[4:])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}-01"
