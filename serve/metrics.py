"""Prometheus metrics of the data plane (``GET /metrics``), per model where it matters.

One registry per process: run one uvicorn worker per ``serve`` process and scale with
replicas (each scraped on its own), which is also how the model cache stays per process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "trainyard_serve_requests",
    "Prediction requests answered, by model and HTTP status.",
    ["model", "status"],
    registry=REGISTRY,
)
INPUTS = Counter(
    "trainyard_serve_inputs",
    "Prediction inputs answered (200s), by model.",
    ["model"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "trainyard_serve_request_seconds",
    "Time from request to answer, by model (successful predictions).",
    ["model"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "trainyard_serve_batch_inputs",
    "Inputs per model execution (adaptive batching), by model.",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
    registry=REGISTRY,
)
COLD_STARTS = Counter(
    "trainyard_serve_cold_starts",
    "Requests that had to load their model first, by model.",
    ["model"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "trainyard_serve_refusals",
    "Requests refused before running a model, by reason (rate, quota, org_cap, key_cap, "
    "tenant_concurrency, model_concurrency, deadline, unauthenticated, forbidden).",
    ["reason"],
    registry=REGISTRY,
)
MODELS_LOADED = Gauge(
    "trainyard_serve_models_loaded", "Models held in this process's LRU.", registry=REGISTRY
)
FLUSHED_EVENTS = Counter(
    "trainyard_serve_usage_events_flushed",
    "Usage events this replica wrote to the ledger from metering windows.",
    registry=REGISTRY,
)
