"""One exception handler: every error leaves the API as RFC 9457 problem details.

``{"type", "title", "status", "detail", "errors": [{"field", "message"}]}`` with content type
``application/problem+json``. Domain errors (``saas.common.errors``) and DRF's own exceptions
(authentication, permissions, parse errors, throttling, 404/405) are mapped here; anything
else is logged and becomes a 500 problem without internals.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions, status
from rest_framework.response import Response

from saas.common.errors import DomainError

log = logging.getLogger(__name__)
TYPE_BASE = "https://trainyard.dev/problems/"
PROBLEM_JSON = "application/problem+json"


def _flatten(detail, prefix: str = "") -> list[dict]:
    if isinstance(detail, dict):
        out: list[dict] = []
        for key, value in detail.items():
            name = key if key != "non_field_errors" else ""
            out += _flatten(value, f"{prefix}.{name}" if prefix and name else (name or prefix))
        return out
    if isinstance(detail, list):
        if all(not isinstance(d, (dict, list)) for d in detail):
            return [{"field": prefix or None, "message": str(d)} for d in detail]
        out = []
        for i, d in enumerate(detail):
            out += _flatten(d, f"{prefix}[{i}]")
        return out
    return [{"field": prefix or None, "message": str(detail)}]


def problem(status_code: int, code: str, title: str, detail: str, errors=None, **extra) -> dict:
    body = {"type": TYPE_BASE + code, "title": title, "status": status_code, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_response(
    status_code: int, code: str, title: str, detail: str, errors=None, headers=None, **extra
) -> Response:
    resp = Response(
        problem(status_code, code, title, detail, errors, **extra),
        status=status_code,
        headers=headers,
    )
    resp.content_type = PROBLEM_JSON
    return resp


_DRF_CODES = {
    exceptions.NotAuthenticated: ("unauthenticated", "Authentication required"),
    exceptions.AuthenticationFailed: ("unauthenticated", "Authentication failed"),
    exceptions.PermissionDenied: ("forbidden", "Forbidden"),
    exceptions.NotFound: ("not-found", "Not found"),
    exceptions.MethodNotAllowed: ("method-not-allowed", "Method not allowed"),
    exceptions.ParseError: ("malformed-request", "The request body could not be parsed"),
    exceptions.UnsupportedMediaType: ("unsupported-media-type", "Unsupported media type"),
    exceptions.NotAcceptable: ("not-acceptable", "Not acceptable"),
    exceptions.Throttled: ("rate-limited", "Too many requests"),
    exceptions.ValidationError: ("validation-failed", "The request did not pass validation"),
}


def problem_exception_handler(exc, context):
    """DRF ``EXCEPTION_HANDLER``: map ``exc`` to a problem+json Response."""
    if isinstance(exc, DomainError):
        return problem_response(
            exc.status, exc.code, exc.title, exc.detail, exc.errors, **exc.extra
        )
    if isinstance(exc, RequestDataTooBig):
        return problem_response(
            413,
            "payload-too-large",
            "The request body is too large",
            f"Request bodies are limited to {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; "
            "send fewer or smaller inputs per request.",
        )
    if isinstance(exc, TooManyFilesSent | TooManyFieldsSent):
        return problem_response(
            400,
            "too-many-parts",
            "Too many form parts",
            f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files and "
            f"{settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields per request.",
        )
    if isinstance(exc, SuspiciousOperation):
        return problem_response(
            400, "bad-request", "Bad request", str(exc) or "The request was refused."
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        code, title = next(
            (v for k, v in _DRF_CODES.items() if isinstance(exc, k)), ("error", "Request failed")
        )
        headers = {}
        # Only some APIException subclasses carry these (NotAuthenticated, Throttled).
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        if isinstance(exc, exceptions.ValidationError):
            errors = _flatten(exc.detail)
            detail = "; ".join(
                f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors[:5]
            )
        else:
            errors = None
            detail = str(exc.detail)
        return problem_response(
            exc.status_code, code, title, detail, errors, headers=headers or None
        )
    log.exception("unhandled error in %s", context.get("view"))
    return problem_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )


def wants_html(request) -> bool:
    """A browser on a dashboard path (not /v1, /stripe or an explicit JSON client)."""
    path = request.path
    if path.startswith(("/v1/", "/stripe/", "/healthz")):
        return False
    return "text/html" in request.headers.get("Accept", "")


def not_found_view(request, exception=None):
    """Django's handler404: a JSON problem for the API and programs; an HTML page for a browser
    on a dashboard path."""
    if wants_html(request):
        return render(
            request,
            "dashboard/error.html",
            {"status": 404, "title": "Not found", "detail": f"There is no page at {request.path}."},
            status=404,
        )
    body = problem(404, "not-found", "Not found", f"No route for {request.path}.")
    return JsonResponse(body, status=404, content_type=PROBLEM_JSON)


def bad_request_view(request, exception=None):
    """Django's handler400 (e.g. a Host header not in ALLOWED_HOSTS): a problem, not HTML."""
    body = problem(
        400,
        "bad-request",
        "Bad request",
        "The request was refused (check the Host header and the URL).",
    )
    return JsonResponse(body, status=400, content_type=PROBLEM_JSON)


def forbidden_view(request, exception=None, reason: str = ""):
    """Django's handler403 and ``CSRF_FAILURE_VIEW`` (a ``PermissionDenied`` outside DRF, a
    dashboard form posted without its CSRF token): the dashboard's error page for a browser on
    a dashboard path, a problem for everything else (Django's default is an HTML page)."""
    detail = (
        "The form expired or was sent from another site; reload the page and try again."
        if reason
        else "You do not have permission to do this."
    )
    if wants_html(request):
        context = {"status": 403, "title": "Forbidden", "detail": detail}
        return render(request, "dashboard/error.html", context, status=403)
    body = problem(403, "forbidden", "Forbidden", detail)
    return JsonResponse(body, status=403, content_type=PROBLEM_JSON)


def server_error_view(request):
    """Django's handler500: always a problem (never a template, which could fail again), for
    the API and the dashboard alike; the traceback is in the log, never in the answer."""
    body = problem(
        500,
        "internal-error",
        "Internal error",
        "Something went wrong on our side; it has been logged.",
    )
    return JsonResponse(body, status=500, content_type=PROBLEM_JSON)
