"""``serve``: Trainyard's data plane, the process that answers online predictions.

An ASGI application (Starlette on uvicorn) that keeps the contract of
``POST /v1/models/{id}/predict`` and speaks the Open Inference Protocol v2 (``/v2/…``). Per
request, on the hot path: the API key from an in-memory cache (``serve.auth``), admission in
one Redis round trip (``serve.admission``), the model from a byte-bounded LRU
(``serve.runtime``), adaptive batching across concurrent requests with fair scheduling between
tenants, and the count committed to the metering window in a second round trip. No SQL; the
caches are refreshed from PostgreSQL in the background and counts flushed to the ledger by
``saas.metering.windows``.

It imports ``saas`` (selectors and services) and ``workers.ml`` (the TensorFlow model
wrapper); ``saas`` never imports it. TensorFlow is imported only after the server has forked
its workers (on the first model load), never at import time.
"""
