"""Log context of the data plane's requests: ``request_id`` in, bound, and out.

``serve`` logs through Django's ``LOGGING`` (``django.setup()`` in ``serve.app``; uvicorn's own
loggers are routed there too), so its lines are the web tier's JSON (``saas.common.logs``).
Per request this binds ``request_id`` (an incoming ``X-Request-ID`` when it looks like an id,
so that nginx's or the web tier's id follows the request, else a fresh one) and answers it as
``X-Request-ID``; the predict routes bind ``organization_id`` and ``model_id`` once the key is
known (:func:`bind_prediction`). No line is logged per request: binding is a few context-variable
writes, the only cost on the hot path.
"""

from __future__ import annotations

import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saas.common.logs import incoming_request_id

_HEADER = b"x-request-id"


def current_request_id() -> str | None:
    """The ``request_id`` bound for the request being served (None outside one)."""
    return structlog.contextvars.get_contextvars().get("request_id")


def bind_prediction(*, organization_id: str, model_id: str) -> None:
    """Bind the caller's tenant and the model asked for to the rest of the request's lines."""
    structlog.contextvars.bind_contextvars(organization_id=organization_id, model_id=model_id)


class RequestIdMiddleware:
    """Pure ASGI middleware (no per-request task or body wrapping): binds ``request_id`` for
    the request's task and adds ``x-request-id`` to the response's headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                incoming = incoming_request_id(value.decode("latin-1"))
                break
        request_id = incoming or uuid.uuid4().hex
        header = (_HEADER, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                # A response forwarded from the web tier (serve.proxy) already has the id.
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        # uvicorn runs each request in a task of its own, so what is bound here (and by the
        # routes) stays with this request; unbound again when it ends.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)
