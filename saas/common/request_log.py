"""Per-request log context (django-structlog's ``RequestMiddleware``, with our rules).

Every line logged while a request is served carries ``request_id``, ``ip`` (the client's
address by ``TRAINYARD_TRUSTED_PROXIES``, :func:`saas.common.actor.client_ip`), ``user_id``
and, once the tenant is known, ``organization_id`` (bound by the API's authentication and base
view and by the dashboard's tenant lookup: :func:`bind_organization`). The response says
which id the request had (``X-Request-ID``), so a customer's report can be found in the logs;
an incoming ``X-Request-ID`` (from nginx, a load balancer or the client) is kept when it
looks like an id, so one id follows a request across the tiers.

django-structlog's ``request_started`` / ``request_finished`` lines name the request as
``METHOD path?query``; here that target is redacted (:func:`saas.common.redact.redact_url`:
every query value and the token segments of emailed links), as the access log's is. Nothing
logs request bodies or headers (django-structlog logs the user agent only).
"""

from __future__ import annotations

from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_structlog import signals
from django_structlog.middlewares import RequestMiddleware

from saas.common.actor import client_ip
from saas.common.logs import REQUEST_ID_HEADER, incoming_request_id
from saas.common.redact import redact_url


def bind_organization(organization_id: str | None, **extra: Any) -> None:
    """Bind the request's tenant (and e.g. ``api_key_id``) to every later line of it."""
    structlog.contextvars.bind_contextvars(organization_id=organization_id, **extra)


class RequestLogMiddleware(RequestMiddleware):
    """django-structlog's ``RequestMiddleware`` (request_id, user_id, request_started and
    request_finished lines) with a redacted request target and an ``X-Request-ID`` response
    header. Sync only: the web tier is WSGI (gunicorn's sync workers)."""

    sync_capable = True
    async_capable = False

    @staticmethod
    def format_request(request: HttpRequest) -> str:
        return f"{request.method} {redact_url(request.get_full_path())}"

    def handle_response(self, request: HttpRequest, response: HttpResponse) -> None:
        # Before django-structlog clears the context (at the end of handle_response).
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response[REQUEST_ID_HEADER] = request_id
        super().handle_response(request, response)


def _bind_request(request: HttpRequest, **_kwargs: Any) -> None:
    """Sent by ``prepare`` after it bound a fresh ``request_id`` and before it logs
    ``request_started``: keep a usable incoming id instead, and bind our client address."""
    incoming = incoming_request_id(request.headers.get(REQUEST_ID_HEADER))
    if incoming:
        structlog.contextvars.bind_contextvars(request_id=incoming)
    structlog.contextvars.bind_contextvars(
        ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES)
    )


signals.bind_extra_request_metadata.connect(
    _bind_request, sender=RequestLogMiddleware, dispatch_uid="trainyard-request-log"
)
