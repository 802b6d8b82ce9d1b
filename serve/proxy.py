"""Forwarding to the control plane, for ``make run``'s single public port.

In production a real reverse proxy (nginx in docker-compose) routes ``/v1/models/*/predict``
and ``/v2/*`` to ``serve`` and everything else to ``web``. On a development machine there may
be no nginx, so ``serve --upstream URL`` plays that part for its own port: what it does not
answer itself it passes to the web tier unchanged (method, path, query, headers, streamed
body; the answer streamed back), adding ``X-Forwarded-For`` / ``X-Forwarded-Proto``. It is a
pass-through with no caching or buffering decisions of its own; httpx does the HTTP.
"""

from __future__ import annotations

import logging

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .logctx import current_request_id

# httpx logs each request's full URL at INFO: for forwarded requests those are emailed links
# with their tokens (invitations, password resets). The web tier's own (redacted) access log
# is the record of them; here only httpx's warnings.
logging.getLogger("httpx").setLevel(logging.WARNING)

# RFC 9110 §7.6.1: connection-specific headers are not forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class Upstream:
    """An HTTP client for the control plane at ``base_url`` (one connection pool)."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(300.0, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


async def forward(request: Request) -> Response:
    """Pass ``request`` to the upstream and stream its answer back (502 if it is down)."""
    upstream: Upstream = request.app.state.upstream
    # Values are stripped: HTTP ignores surrounding whitespace (RFC 9110 §5.5), and httpx
    # refuses to send a value that keeps it ("Authorization: Bearer " from an empty variable).
    headers = [
        (k, v.strip())
        for k, v in request.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() != "x-request-id"
    ]
    # The id this request has here (serve.logctx), so the web tier's lines carry the same one.
    request_id = current_request_id()
    if request_id:
        headers.append(("x-request-id", request_id))
    client_host = request.client.host if request.client else ""
    headers.append(("x-forwarded-for", client_host))
    headers.append(("x-forwarded-proto", request.url.scheme))
    body = request.stream() if request.method not in ("GET", "HEAD") else None
    req = upstream.client.build_request(
        request.method,
        request.url.path,
        params=request.url.query,
        headers=headers,
        content=body,
    )
    try:
        resp = await upstream.client.send(req, stream=True)
    except httpx.HTTPError as exc:
        return Response(
            b'{"type": "https://trainyard.dev/problems/bad-gateway", "title": "Bad gateway", '
            b'"status": 502, "detail": "The control plane did not answer."}',
            status_code=502,
            media_type="application/problem+json",
            headers={"X-Upstream-Error": type(exc).__name__},
        )
    out = StreamingResponse(
        resp.aiter_raw(), status_code=resp.status_code, background=BackgroundTask(resp.aclose)
    )
    out.raw_headers = [
        (k, v) for k, v in resp.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP
    ]
    return out
