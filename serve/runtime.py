"""Models in memory, and the scheduler that runs them: adaptive batching, fair across tenants.

**The model store** is an LRU of loaded SavedModels bounded by bytes (the SavedModel's size
on disk, ``workers.ml.model_cache.directory_size``, as the worker's cache counts it). A miss
loads from artifact storage (``saas.registry.services.model_artifact_extract``) on a loader
thread of its own, once per model however many requests wait for it (single flight), and the
answer says ``cold_start: true``. Nothing is loaded at import or start-up: uvicorn forks (or
spawns) its workers first, and each loads what it is asked for.

**The scheduler** runs model executions on ``slots`` threads (TensorFlow releases the GIL
while it computes). Requests for the same model queue together; whenever the model is idle
the queued requests are taken as one batch of at most ``max_batch`` inputs (a request with more
is split into chunks of ``max_batch``): with one request in flight that is a batch of one and
no waiting (batching costs nothing when it does not pay), under load the batch grows with the
queue. ``max_wait_ms`` can hold a non-full batch a little longer. This is the "dynamic
batching" of Triton (``max_queue_delay_microseconds``) and BentoML's adaptive batching, with
the delay defaulting to zero.

The batch size is guarded by latency: each model has a cap, at most ``max_batch``, adjusted
after every execution by additive increase / multiplicative decrease (the TCP congestion
rule, Jacobson 1988): an execution longer than ``batch_target_ms`` halves the cap, one under
half of it raises the cap by one. A model whose big batches would push the tail latency up
(long texts, large images) thus runs smaller ones, and large requests are chunked at the cap.

Tenants are isolated at the slot level: a tenant holds at most ``tenant_slots`` executions at
once (``slots - 1`` by default, so one slot is always free for everyone else), slots are
granted round robin across tenants with queued work, and an execution is bounded by
``max_batch`` inputs, so another tenant waits at most one bounded execution for a slot.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from saas.inference.selectors import ServingModel

from . import metrics
from .config import ServeConfig
from .cpumeter import METER
from .errors import Problem

log = logging.getLogger(__name__)


class ModelStore:
    """Loaded models by ``(model id, version)``, least recently used evicted first.

    Args:
        max_bytes: budget for the sum of the loaded models' sizes; a model larger than the
            whole budget is served but not kept.
        cache_dir: where artifacts are extracted (default ``TRAINYARD_MODEL_CACHE_DIR``).
        disk_bytes: bound on ``cache_dir`` in bytes (default
            ``TRAINYARD_MODEL_CACHE_DISK_BYTES``, 10 GiB): after each extraction the least
            recently loaded models that are not in memory are removed from disk.
    """

    def __init__(
        self,
        max_bytes: int,
        loader_threads: int = 1,
        *,
        cache_dir: Path | None = None,
        disk_bytes: int | None = None,
    ) -> None:
        from workers.ml.model_cache import disk_max_bytes

        self.max_bytes = max_bytes
        #: Where SavedModels are extracted (``<model id>/v<version>/saved_model``), pruned to
        #: ``disk_bytes`` after every extraction (``workers.ml.model_cache.disk_cache_prune``).
        self.cache_dir = Path(cache_dir or settings.TRAINYARD_MODEL_CACHE_DIR)
        self.disk_bytes = disk_max_bytes() if disk_bytes is None else disk_bytes
        self._models: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._loading: dict[tuple[str, int], asyncio.Future] = {}
        self._evicted: set[str] = set()  # deleted models: a load still in flight is not kept
        # One loader thread: extractions, prunes and removals never race on the same folder.
        self._pool = ThreadPoolExecutor(max_workers=loader_threads, thread_name_prefix="serve-load")

    @property
    def total_bytes(self) -> int:
        return sum(m.size_bytes for m in self._models.values())

    def loaded(self) -> list[str]:
        """Model ids in memory, least recently used first."""
        return [model_id for model_id, _v in self._models]

    async def get(self, model: ServingModel) -> tuple[Any, bool]:
        """``(LoadedModel, cold_start)``; loads on a miss.

        Raises :class:`Problem` 503 when the artifact cannot be read or loaded (the request
        is not billed)."""
        key = (model.id, model.version)
        loaded: Any = self._models.get(key)
        if loaded is not None:
            self._models.move_to_end(key)
            return loaded, False
        pending = self._loading.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            keep = {model_id for model_id, _v in self._models} | {k[0] for k in self._loading}
            pending = loop.run_in_executor(
                self._pool, _load, model, self.cache_dir, self.disk_bytes, keep | {model.id}
            )
            self._loading[key] = pending
            pending.add_done_callback(lambda _f: self._loading.pop(key, None))
        try:
            loaded = await asyncio.shield(pending)
        except Exception as exc:
            log.exception("loading %s failed", model.id)
            raise Problem(
                503,
                "service-unavailable",
                "The model could not be loaded",
                f"Model {model.id} could not be loaded ({type(exc).__name__}); retry later.",
                headers={"Retry-After": "5"},
            ) from None
        # TensorFlow's objects are long-lived: move them out of the cyclic collector's reach so
        # a full collection does not pause the event loop for tens of milliseconds (gc.freeze).
        gc.collect()
        gc.freeze()
        if (
            key not in self._models
            and model.id not in self._evicted
            and loaded.size_bytes <= self.max_bytes
        ):
            while self._models and self.total_bytes + loaded.size_bytes > self.max_bytes:
                self._models.popitem(last=False)
            self._models[key] = loaded
            metrics.MODELS_LOADED.set(len(self._models))
        metrics.COLD_STARTS.labels(model=model.id).inc()
        return loaded, True

    async def evict(self, model_id: str) -> bool:
        """Forget ``model_id`` (deleted): every version leaves memory, a load in flight is not
        kept, and its extracted files are removed. Returns whether it was in memory."""
        self._evicted.add(model_id)
        doomed = [key for key in self._models if key[0] == model_id]
        for key in doomed:
            del self._models[key]
        metrics.MODELS_LOADED.set(len(self._models))
        from workers.ml.model_cache import disk_cache_remove

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, disk_cache_remove, self.cache_dir, model_id)
        return bool(doomed)


def _load(model: ServingModel, cache_dir: Path, disk_bytes: int, keep: set[str]) -> Any:
    # On the loader thread: extraction (storage I/O) and TensorFlow's restore both block.
    from saas.registry.services import model_artifact_extract
    from workers.ml.model_cache import LoadedModel, disk_cache_prune, disk_cache_touch

    dest = cache_dir / model.id / f"v{model.version}"
    path = model_artifact_extract(key=model.artifact_key, dest=dest)
    disk_cache_touch(cache_dir, model.id)
    loaded = LoadedModel.load(str(path))
    # Bound the folder now that this one is in: least recently extracted first, never a
    # model in memory (or this one).
    removed = disk_cache_prune(cache_dir, disk_bytes, keep=keep)
    if removed:
        log.info("model cache on disk: removed %s", ", ".join(removed))
    return loaded


@dataclass(eq=False)
class _Job:
    """One request's inputs (or one chunk of them) waiting for a model execution."""

    organization_id: str
    inputs: list[bytes]
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass(eq=False)
class _Queue:
    model_id: str
    organization_id: str
    loaded: Any
    jobs: deque[_Job] = field(default_factory=deque)
    running: int = 0
    timer: asyncio.TimerHandle | None = None
    cap: int = 0  # the latency-guarded batch cap (0: not set yet, use max_batch)


@dataclass(frozen=True)
class Execution:
    """What a request gets back: its rows of scores, formatted, and the execution's time."""

    predictions: list[dict[str, Any]]
    seconds: float  # wall time of the execution(s) this request was part of
    micros_share: int  # this request's share of the execution's CPU time, µs (metering)


class InputError(Exception):
    """An input the model cannot take (an image TensorFlow cannot decode)."""


class Scheduler:
    """Batches requests per model and grants execution slots fairly across tenants."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._pool = ThreadPoolExecutor(
            max_workers=config.slots,
            thread_name_prefix="serve-exec",
            initializer=_lower_priority,
            initargs=(config.exec_nice,),
        )
        self._queues: dict[str, _Queue] = {}
        self._tenant_running: dict[str, int] = {}
        self._running = 0
        self._rr: deque[str] = deque()  # tenants in round-robin order

    def backlog(self, model_id: str) -> int:
        """Inputs queued for ``model_id`` (not yet running)."""
        queue = self._queues.get(model_id)
        return sum(len(j.inputs) for j in queue.jobs) if queue is not None else 0

    def queued_inputs(self) -> int:
        return sum(len(j.inputs) for q in self._queues.values() for j in q.jobs)

    async def run(
        self, *, model: ServingModel, loaded: Any, organization_id: str, inputs: list[bytes]
    ) -> Execution:
        """Run ``inputs`` through ``loaded`` (possibly batched with other requests).

        Raises :class:`InputError` when an input cannot be decoded (the other requests of its
        batch are re-run without it), or the model's exception for anything else.
        """
        loop = asyncio.get_running_loop()
        queue = self._queues.get(model.id)
        if queue is None:
            queue = _Queue(model_id=model.id, organization_id=organization_id, loaded=loaded)
            self._queues[model.id] = queue
        queue.loaded = loaded  # the same version, reloaded after an eviction
        if not queue.cap:
            queue.cap = self.config.max_batch
        step = queue.cap
        chunks = [inputs[i : i + step] for i in range(0, len(inputs), step)]
        jobs = [_Job(organization_id, chunk, loop.create_future()) for chunk in chunks]
        queue.jobs.extend(jobs)
        self._dispatch()
        try:
            results = await asyncio.gather(*(j.future for j in jobs))
        except BaseException:
            for j in jobs:
                j.future.cancel()  # still queued: never run (a deadline passed)
            raise
        predictions: list[dict[str, Any]] = []
        seconds = 0.0
        micros = 0
        for rows, secs, share in results:
            predictions.extend(rows)
            seconds = max(seconds, secs)
            micros += share
        return Execution(predictions=predictions, seconds=seconds, micros_share=micros)

    # --- dispatch ------------------------------------------------------------------------

    def _runnable(self, queue: _Queue) -> bool:
        while queue.jobs and queue.jobs[0].future.done():
            queue.jobs.popleft()  # cancelled while queued
        if not queue.jobs:
            return False
        per_model = 1 if self.config.batching else self.config.tenant_slots
        return queue.running < per_model

    def _tenant_queues(self, org: str) -> list[_Queue]:
        return [q for q in self._queues.values() if q.organization_id == org]

    def _dispatch(self) -> None:
        """Start executions while slots are free, one tenant at a time in round robin."""
        for q in self._queues.values():
            if q.jobs and q.organization_id not in self._rr:
                self._rr.append(q.organization_id)
        tried = 0
        while self._running < self.config.slots and self._rr and tried < len(self._rr):
            org = self._rr[0]
            self._rr.rotate(-1)
            if self._tenant_running.get(org, 0) >= self.config.tenant_slots:
                tried += 1
                continue
            queue = next((q for q in self._tenant_queues(org) if self._runnable(q)), None)
            if queue is None:
                if not any(q.jobs for q in self._tenant_queues(org)):
                    self._rr.remove(org)
                else:
                    tried += 1
                continue
            batch = self._take(queue)
            if batch is None:
                tried += 1
                continue
            tried = 0
            self._start(queue, batch)

    def _take(self, queue: _Queue) -> list[_Job] | None:
        cfg = self.config
        if not cfg.batching:
            return [queue.jobs.popleft()]
        pending = sum(len(j.inputs) for j in queue.jobs if not j.future.done())
        if cfg.max_wait_ms > 0 and pending < queue.cap:
            waited = (time.perf_counter() - queue.jobs[0].enqueued) * 1000
            if waited < cfg.max_wait_ms:
                if queue.timer is None:
                    delay = (cfg.max_wait_ms - waited) / 1000

                    def fire() -> None:
                        queue.timer = None
                        self._dispatch()

                    queue.timer = asyncio.get_running_loop().call_later(delay, fire)
                return None
        batch: list[_Job] = []
        size = 0
        while queue.jobs:
            job = queue.jobs[0]
            if job.future.done():
                queue.jobs.popleft()
                continue
            if batch and size + len(job.inputs) > queue.cap:
                break
            batch.append(queue.jobs.popleft())
            size += len(job.inputs)
        return batch or None

    def _start(self, queue: _Queue, batch: list[_Job]) -> None:
        org = queue.organization_id
        queue.running += 1
        self._running += 1
        self._tenant_running[org] = self._tenant_running.get(org, 0) + 1
        metrics.BATCH_SIZE.labels(model=queue.model_id).observe(sum(len(j.inputs) for j in batch))
        fut = asyncio.get_running_loop().run_in_executor(self._pool, _execute, queue.loaded, batch)

        def done(f: asyncio.Future) -> None:
            queue.running -= 1
            self._running -= 1
            self._tenant_running[org] -= 1
            try:
                outcomes = f.result()
            except BaseException as exc:  # the executor itself failed
                outcomes = [exc] * len(batch)
            self._adapt(queue, batch, outcomes)
            for job, outcome in zip(batch, outcomes, strict=True):
                if job.future.done():
                    continue
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)
            self._dispatch()

        fut.add_done_callback(done)

    def _adapt(self, queue: _Queue, batch: list[_Job], outcomes: list[Any]) -> None:
        """AIMD on the model's batch cap from this execution's time (see the module doc)."""
        done = [o for o in outcomes if isinstance(o, tuple)]
        if not done:
            return
        seconds = done[0][1]
        size = sum(len(j.inputs) for j in batch)
        target = self.config.batch_target_ms / 1000
        if seconds > target and size > 1:
            queue.cap = max(1, min(queue.cap, size) // 2)
        elif seconds < target / 2 and size >= queue.cap:
            queue.cap = min(self.config.max_batch, queue.cap + 1)


def _lower_priority(nice: int) -> None:
    """Run this execution thread ``nice`` steps below the event loop (Linux schedules threads
    one by one, so ``setpriority`` on the thread id applies to it alone): the loop, which
    parses, admits and answers every tenant's requests, then never waits for CPU behind a
    long model execution, and the scheduler's short executions wake ahead of long ones."""
    if nice > 0 and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
        except OSError:
            log.warning("could not lower the execution threads' priority")


def _execute(loaded: Any, batch: list[_Job]) -> list[Any]:
    """On an execution thread: one model call for the whole batch; per job, ``(rows,
    seconds, CPU micros share)`` or the exception (wall seconds for the batch cap; CPU
    microseconds, from :mod:`serve.cpumeter`, split over the jobs by input count). If the batch fails on its inputs, each job is
    retried alone so that one undecodable image fails only its own request."""
    flat = [x for job in batch for x in job.inputs]
    t0 = time.perf_counter()
    token = METER.begin()
    try:
        rows = loaded.scores(flat)
    except Exception as exc:
        METER.end(token)  # a failed call is not billed (its requests get errors)
        if len(batch) > 1:
            return [_execute(loaded, [job])[0] for job in batch]
        return [_input_error(exc)]
    except BaseException:
        # Not an input problem (an interpreter exit reaching this thread): still end the
        # token, or it would take a share of every later interval's CPU for good.
        METER.end(token)
        raise
    seconds = time.perf_counter() - t0  # wall time: what the AIMD batch cap adapts to
    try:
        formatted = loaded.format(rows)
    finally:
        cpu = METER.end(token)  # CPU seconds: what the execution cost (serve.cpumeter)
    out: list[Any] = []
    start = 0
    total = max(1, len(flat))
    for job in batch:
        n = len(job.inputs)
        out.append((formatted[start : start + n], seconds, int(cpu * 1e6 * n / total)))
        start += n
    return out


def _input_error(exc: Exception) -> Exception:
    name = type(exc).__name__
    if name == "InvalidArgumentError":  # TensorFlow's: an input it cannot decode
        return InputError(str(exc).splitlines()[0][:300])
    return exc
