"""RFC 9457 problem details for the data plane, the same shape as the control plane's
(``saas.api.errors``): ``{"type", "title", "status", "detail", "errors"?, …extra}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_BASE = "https://trainyard.dev/problems/"


class Problem(Exception):
    """An error answered as ``application/problem+json``.

    Args:
        status: the HTTP status (4xx for the caller's mistakes, 5xx for ours).
        code: the last segment of ``type`` (e.g. ``validation-failed``, ``rate-limited``).
        title: short, the same for every instance of ``code``.
        detail: what happened in this request, in plain words.
        errors: ``[{"field", "message"}]`` for input errors.
        headers: extra response headers (``Retry-After``, ``RateLimit-*``, ``WWW-Authenticate``).
        extra: more members (e.g. which limit a 402 hit and when it resets).
    """

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_BASE + self.code,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = self.errors
        out.update(self.extra)
        return out

    def response(self, headers: dict[str, str] | None = None) -> Response:
        return Response(
            orjson.dumps(self.body()),
            status_code=self.status,
            media_type="application/problem+json",
            headers={**(headers or {}), **self.headers},
        )


def invalid(detail: str, errors: list[dict[str, str]]) -> Problem:
    """400 ``validation-failed`` listing every problem found (at most 100)."""
    return Problem(
        400, "validation-failed", "The request did not pass validation", detail, errors=errors[:100]
    )


def not_found(what: str = "model") -> Problem:
    """404: missing, or another tenant's (the same answer for both)."""
    return Problem(404, "not-found", "Not found", f"No such {what}.")


def unauthenticated(detail: str) -> Problem:
    return Problem(
        401,
        "unauthenticated",
        "Authentication failed",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="trainyard"'},
    )


_TITLES = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "The request body is too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


async def http_exception_problem(request: Any, exc: Exception) -> Response:
    """Starlette's ``HTTPException`` handler (an unknown route's 404, a wrong method's 405, …)
    as a problem; Starlette's default answers these in plain text."""
    status = int(getattr(exc, "status_code", 500))
    code, title = _TITLES.get(status, ("error", "Request failed"))
    detail = getattr(exc, "detail", None)
    if status == 404:
        detail = "No route for this path on the data plane."
    headers = dict(getattr(exc, "headers", None) or {})
    return Problem(status, code, title, str(detail or title)).response(headers)


async def problem_exception(request: Any, exc: Exception) -> Response:
    """A :class:`Problem` raised outside a route's own ``try`` (a middleware, a new route)."""
    assert isinstance(exc, Problem)
    return exc.response()


async def internal_error(request: Any, exc: Exception) -> Response:
    """Any uncaught exception: a 500 problem without internals. Starlette's
    ``ServerErrorMiddleware`` calls this (and still re-raises, so uvicorn logs the traceback);
    its default is a plain-text ``Internal Server Error``."""
    return Problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    ).response()


def exception_handlers() -> dict[Any, Any]:
    """The app's ``exception_handlers``: every error the data plane answers is problem+json."""
    from starlette.exceptions import HTTPException

    return {
        Exception: internal_error,
        HTTPException: http_exception_problem,
        Problem: problem_exception,
    }
