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
