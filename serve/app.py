"""The ASGI application: routes of the data plane.

- ``POST /v1/models/{id}/predict`` — the public predict contract (DESIGN §3), unchanged.
- Open Inference Protocol v2 (KServe / Triton / MLServer clients): ``GET /v2``,
  ``/v2/health/live``, ``/v2/health/ready``, ``GET /v2/models/{id}``, ``/v2/models/{id}/ready``,
  ``POST /v2/models/{id}/infer`` (and the same under ``/versions/{v}``).
- ``GET /healthz/serve`` (liveness), ``GET /metrics`` (Prometheus); readiness checks in
  ``serve.health``.
- With ``TRAINYARD_SERVE_UPSTREAM`` set, every other path is forwarded to the control plane
  (``serve.proxy``), so that ``make run`` has one public base URL without a separate proxy.

Starlette on uvicorn (uvloop, httptools) was chosen by measurement against the peers' stacks:
KServe's model server and BentoML are themselves FastAPI/Starlette on uvicorn, so the same
server minus their per-request layers (pydantic models, dependency injection) is the floor
they cannot go under; see ``bench/serving.py``.
"""

from __future__ import annotations

import logging
import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
django.setup()

# isort: split

import orjson  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from . import health, metrics, oip  # noqa: E402
from .config import ServeConfig  # noqa: E402
from .errors import Problem, exception_handlers  # noqa: E402
from .inputs import request_inputs, request_weight  # noqa: E402
from .logctx import RequestIdMiddleware, bind_prediction  # noqa: E402
from .plane import Plane  # noqa: E402
from .responses import SLOW_ANSWER_SECONDS, CommittedResponse  # noqa: E402

log = logging.getLogger(__name__)


def json_response(body, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


async def predict(request: Request) -> Response:
    """``POST /v1/models/{id}/predict``: 1–256 texts, or images as base64 JSON or multipart."""
    plane: Plane = request.app.state.plane
    started = time.monotonic()
    model_id = request.path_params["model_id"]
    label = "unknown"
    try:
        principal = await plane.auth.authenticate(request.headers.get("authorization"))
        bind_prediction(organization_id=principal.organization_id, model_id=model_id)
        plane.check_access(principal)
        model = await plane.model_for(principal, model_id)
        label = model.id
        async with plane.gate.request(principal, model.id, request_weight(request), started):
            inputs = await request_inputs(request, model, plane.config)
            answer = await plane.predict(
                principal=principal,
                model=model,
                inputs=inputs,
                started=started,
                receive=request.receive,
            )
    except Problem as problem:
        metrics.REQUESTS.labels(model=label, status=str(problem.status)).inc()
        if problem.status == 401:
            metrics.REFUSALS.labels(reason="unauthenticated").inc()
        return problem.response()
    metrics.REQUESTS.labels(model=label, status="200").inc()
    metrics.INPUTS.labels(model=label).inc(len(inputs))
    metrics.LATENCY.labels(model=label).observe(time.monotonic() - started)
    return CommittedResponse(
        orjson.dumps(
            {
                "id": answer.id,
                "object": "prediction",
                "model": model.id,
                "predictions": answer.predictions,
                "usage": {
                    "predictions": len(inputs),
                    "inference_ms": answer.inference_ms,
                    "cold_start": answer.cold_start,
                },
            }
        ),
        commit=answer.commit,
        release=answer.release,
        check_disconnect=time.monotonic() - started > SLOW_ANSWER_SECONDS,
        headers=answer.headers,
    )


async def live(request: Request) -> Response:
    """Liveness: the process answers (no dependency is checked, so a restart loop is never
    caused by Redis or PostgreSQL being down)."""
    return json_response({"live": True})


async def ready(request: Request) -> Response:
    """Readiness (``serve.health``): 200 ``{"ready": true, "models_loaded": n, "checks":
    {"redis": "ok", "database": "ok", "storage": "ok"}}``, or a 503 problem whose ``checks``
    name what failed (``{"redis": "unreachable (ConnectionError)", …}``) and whose detail
    lists the failing checks."""
    plane: Plane = request.app.state.plane
    checks = await health.readiness(plane)
    failing = [name for name, result in checks.items() if result != "ok"]
    if failing:
        return Problem(
            503,
            "service-unavailable",
            "Not ready",
            f"Failing checks: {', '.join(failing)}.",
            checks=checks,
            ready=False,
        ).response()
    return json_response(
        {"ready": True, "models_loaded": len(plane.store.loaded()), "checks": checks}
    )


async def prometheus(request: Request) -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def create_app(config: ServeConfig | None = None) -> Starlette:
    """The data plane's ASGI app (a factory: ``uvicorn --factory serve.app:create_app``).

    Nothing is loaded here: the :class:`Plane` is built in the lifespan, inside the worker's
    event loop, after uvicorn has started (and forked) it.
    """
    config = config or ServeConfig.from_env()
    # Read by TensorFlow when it starts (on the first model load, after this).
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(config.tf_threads))

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Starlette):
        plane = Plane(config)
        app.state.plane = plane
        await plane.start()
        proxy = None
        if config.upstream:
            from .proxy import Upstream

            proxy = Upstream(config.upstream)
            app.state.upstream = proxy
        try:
            yield
        finally:
            if proxy is not None:
                await proxy.aclose()
            await plane.stop()

    routes = [
        Route("/v1/models/{model_id}/predict", predict, methods=["POST"]),
        Route("/healthz/serve", live, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        *oip.routes(),
    ]
    if config.upstream:
        from .proxy import forward

        routes.append(
            Route(
                "/{path:path}",
                forward,
                methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            )
        )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers(),
        middleware=[Middleware(RequestIdMiddleware)],
    )
    app.state.config = config
    return app
