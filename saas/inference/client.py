"""The control plane's side of online predictions: it never runs a model, it asks ``serve``.

Predictions are answered by the data plane (``serve``, a process of its own; DESIGN §1). The
public route ``POST /v1/models/{id}/predict`` is sent to it by the reverse proxy (nginx in
docker-compose; ``serve --upstream`` in ``make run``). Two things here still reach it from
the web tier:

- the dashboard's "try it", on behalf of a signed-in member, with a short-lived token signed
  with ``SECRET_KEY`` (``Authorization: Internal <token>``) naming the organisation and user;
- a client that calls the web tier's predict route directly (a proxy misconfigured, or a
  test client): the request is forwarded as is, with the caller's own ``Authorization``.

``TRAINYARD_SERVE_URL`` says where the data plane listens; no answer is a 503 problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
import structlog
from django.conf import settings
from django.core import signing

from saas.common.logs import REQUEST_ID_HEADER

_SALT = "trainyard.serve.internal"
INTERNAL_TOKEN_MAX_AGE_SECONDS = 60


def internal_token(*, organization_id: str, user_id: int) -> str:
    """A token for ``Authorization: Internal …`` letting ``user_id`` predict in
    ``organization_id`` for :data:`INTERNAL_TOKEN_MAX_AGE_SECONDS`. The data plane still
    checks the membership, role and suspension itself."""
    return signing.dumps({"o": organization_id, "u": user_id}, salt=_SALT, compress=False)


def internal_token_verify(token: str) -> tuple[str, int] | None:
    """``(organization_id, user_id)`` from a token of :func:`internal_token`; None when the
    signature is wrong or it is older than its maximum age."""
    try:
        claim = signing.loads(token, salt=_SALT, max_age=INTERNAL_TOKEN_MAX_AGE_SECONDS)
        return str(claim["o"]), int(claim["u"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Forwarded:
    """The data plane's answer, to be returned to the caller unchanged."""

    status: int
    content_type: str
    body: bytes
    headers: dict[str, str]


_PASS_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after")


def data_plane_predict(
    *,
    model_id: str,
    authorization: str,
    content_type: str,
    body: bytes,
    timeout: float | None = None,
) -> Forwarded:
    """POST ``body`` to the data plane's ``/v1/models/{model_id}/predict``.

    Returns the answer whatever its status (problems included). When the data plane cannot
    be reached or does not answer within ``timeout`` (``TRAINYARD_PREDICT_TIMEOUT_SECONDS``),
    returns a 503 problem of our own; nothing was billed (the data plane meters only what it
    answers).
    """
    url = f"{settings.TRAINYARD_SERVE_URL.rstrip('/')}/v1/models/{model_id}/predict"
    headers = {"Authorization": authorization, "Content-Type": content_type}
    # The data plane's lines for this prediction carry this request's id (saas.common.logs).
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    try:
        r = httpx.post(
            url,
            content=body,
            headers=headers,
            timeout=timeout or settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS,
        )
    except httpx.HTTPError:
        return Forwarded(
            status=503,
            content_type="application/problem+json",
            body=json.dumps(
                {
                    "type": "https://trainyard.dev/problems/service-unavailable",
                    "title": "The data plane is unavailable",
                    "status": 503,
                    "detail": "The prediction service did not answer; retry later.",
                }
            ).encode(),
            headers={"Retry-After": "5"},
        )
    return Forwarded(
        status=r.status_code,
        content_type=r.headers.get("content-type", "application/json"),
        body=r.content,
        headers={k: v for k, v in r.headers.items() if k.lower() in _PASS_HEADERS},
    )
