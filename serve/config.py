"""The data plane's knobs, from the environment (read once at start-up)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


@dataclass(frozen=True)
class ServeConfig:
    """Attributes (environment variable in brackets, default after it):

    max_batch: most inputs one model execution takes [TRAINYARD_SERVE_MAX_BATCH, 64]; a
        request with more is split into executions of at most this size.
    batch_target_ms: the execution time the batch cap is steered to (AIMD, ``serve.runtime``)
        [TRAINYARD_SERVE_BATCH_TARGET_MS, 50].
    max_wait_ms: how long a non-full batch waits for more requests [TRAINYARD_SERVE_MAX_WAIT_MS,
        0: never; batches form from whatever queued while the model was busy].
    batching: combine concurrent requests [TRAINYARD_SERVE_BATCHING, 1]; 0 runs each request
        alone (the benchmark's baseline).
    slots: model executions at once in this process [TRAINYARD_SERVE_SLOTS, CPU count].
    tf_threads: TensorFlow's intra-op threads, i.e. cores one execution may use
        [TRAINYARD_SERVE_TF_THREADS, CPU count // slots, at least 1], so that ``slots``
        executions at once never ask for more cores than there are and one tenant's
        execution cannot take the core left for the others.
    exec_nice: how many nice steps the model-execution threads run below the event loop
        [TRAINYARD_SERVE_EXEC_NICE, 5; 0 leaves them equal].
    tenant_slots: most executions one tenant holds at once [TRAINYARD_SERVE_TENANT_SLOTS,
        slots - 1, at least 1], so one slot is always left for the others.
    tenant_inflight: requests one tenant may have in flight in this process
        [TRAINYARD_SERVE_TENANT_INFLIGHT, 128]; more is a 429 before the body is read.
    tenant_active_bytes: request bytes one tenant may have being worked on at once per
        process while other tenants have requests in flight there
        [TRAINYARD_SERVE_TENANT_ACTIVE_BYTES, 512 KiB]; later requests wait, unread, for their
        turn (a request alone always goes; weight = its Content-Length).
    model_inflight: the same per model [TRAINYARD_SERVE_MODEL_INFLIGHT, 256] (503).
    deadline_s: a request not answered by then is a 504, unbilled
        [TRAINYARD_SERVE_DEADLINE_SECONDS, 30].
    max_inputs: inputs per request [TRAINYARD_PREDICT_MAX_INPUTS, 256].
    max_text_chars: characters per text input [TRAINYARD_SERVE_MAX_TEXT_CHARS, 100000].
    max_request_pixels: decoded pixels per request, summed over its images, decided from the
        headers before any decoding [TRAINYARD_SERVE_MAX_REQUEST_PIXELS, 64 Mpx].
    max_body_bytes: request body limit [TRAINYARD_SERVE_MAX_BODY_BYTES, 64 MiB].
    auth_refresh_s: how often cached keys and organisations are re-read
        [TRAINYARD_SERVE_AUTH_REFRESH_SECONDS, 0.5]: the staleness bound on a revocation.
    auth_max_stale_s: a cached key not refreshed for this long (database unreachable) is
        re-read on the request, and refused with 503 if that fails
        [TRAINYARD_SERVE_AUTH_MAX_STALE_SECONDS, 10].
    budget_refresh_s: how often month-to-date spend is re-read per organisation
        [TRAINYARD_SERVE_BUDGET_REFRESH_SECONDS, 5].
    flush_interval_s: how often this replica flushes closed metering windows
        [TRAINYARD_SERVE_FLUSH_SECONDS, 1].
    cache_bytes: the model LRU's budget [TRAINYARD_MODEL_CACHE_BYTES, 2 GiB].
    upstream: the control plane's URL; paths that are not the data plane's are forwarded to it
        [TRAINYARD_SERVE_UPSTREAM, none] (``make run``'s single public port).
    """

    max_batch: int
    batch_target_ms: float
    max_wait_ms: float
    batching: bool
    slots: int
    tf_threads: int
    exec_nice: int
    tenant_slots: int
    tenant_inflight: int
    tenant_active_bytes: int
    model_inflight: int
    deadline_s: float
    max_inputs: int
    max_text_chars: int
    max_request_pixels: int
    max_body_bytes: int
    auth_refresh_s: float
    auth_max_stale_s: float
    budget_refresh_s: float
    flush_interval_s: float
    cache_bytes: int
    upstream: str | None

    @classmethod
    def from_env(cls) -> ServeConfig:
        slots = max(1, _int("TRAINYARD_SERVE_SLOTS", os.cpu_count() or 1))
        return cls(
            max_batch=max(1, _int("TRAINYARD_SERVE_MAX_BATCH", 64)),
            batch_target_ms=max(1.0, _float("TRAINYARD_SERVE_BATCH_TARGET_MS", 50)),
            max_wait_ms=max(0.0, _float("TRAINYARD_SERVE_MAX_WAIT_MS", 0)),
            batching=os.environ.get("TRAINYARD_SERVE_BATCHING", "1") not in ("0", "false", "no"),
            slots=slots,
            tf_threads=max(1, _int("TRAINYARD_SERVE_TF_THREADS", (os.cpu_count() or 1) // slots)),
            exec_nice=max(0, _int("TRAINYARD_SERVE_EXEC_NICE", 5)),
            tenant_slots=max(1, _int("TRAINYARD_SERVE_TENANT_SLOTS", max(1, slots - 1))),
            tenant_inflight=max(1, _int("TRAINYARD_SERVE_TENANT_INFLIGHT", 128)),
            tenant_active_bytes=max(1, _int("TRAINYARD_SERVE_TENANT_ACTIVE_BYTES", 512 * 1024)),
            model_inflight=max(1, _int("TRAINYARD_SERVE_MODEL_INFLIGHT", 256)),
            deadline_s=_float("TRAINYARD_SERVE_DEADLINE_SECONDS", 30.0),
            max_inputs=_int("TRAINYARD_PREDICT_MAX_INPUTS", 256),
            max_text_chars=_int("TRAINYARD_SERVE_MAX_TEXT_CHARS", 100_000),
            max_request_pixels=_int("TRAINYARD_SERVE_MAX_REQUEST_PIXELS", 64_000_000),
            max_body_bytes=_int("TRAINYARD_SERVE_MAX_BODY_BYTES", 64 * 1024 * 1024),
            auth_refresh_s=_float("TRAINYARD_SERVE_AUTH_REFRESH_SECONDS", 0.5),
            auth_max_stale_s=_float("TRAINYARD_SERVE_AUTH_MAX_STALE_SECONDS", 10.0),
            budget_refresh_s=_float("TRAINYARD_SERVE_BUDGET_REFRESH_SECONDS", 5.0),
            flush_interval_s=_float("TRAINYARD_SERVE_FLUSH_SECONDS", 1.0),
            cache_bytes=_int("TRAINYARD_MODEL_CACHE_BYTES", 2 * 1024**3),
            upstream=os.environ.get("TRAINYARD_SERVE_UPSTREAM") or None,
        )
