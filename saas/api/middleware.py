"""Request guards that hold for every route, the API's and the dashboard's alike."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from saas.common.errors import ValidationFailed

from .errors import PROBLEM_JSON, not_found_view, problem, wants_html


def _nul_fields(data) -> list[str]:
    """The names of the fields of a ``QueryDict`` whose name or any value holds a NUL."""
    return sorted(
        k for k, values in data.lists() if "\x00" in k or any("\x00" in v for v in values)
    )


def _small_form(request: HttpRequest) -> bool:
    """An url-encoded form body this middleware may parse: under Django's body limit, so that
    reading it here raises nothing (too large a body is left to the view, which answers 413).
    Multipart bodies are left to the views and their forms (reading one here would fix the
    upload handlers before the view could choose them)."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return False
    if request.content_type != "application/x-www-form-urlencoded":
        return False
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return limit is None or length <= limit


class RejectNulMiddleware:
    """Refuse a NUL character in the path (404), the query string or an url-encoded form body
    (400, naming each parameter) before any view runs.

    PostgreSQL text cannot hold NUL, so such an id or filter can match no row, and reaching a
    query with it would be a DataError (a 500) in whichever view got it first.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return not_found_view(request)
        bad = _nul_fields(request.GET)
        detail = "Query parameters cannot contain NUL characters."
        if not bad and _small_form(request):
            bad = _nul_fields(request.POST)
            detail = "Form fields cannot contain NUL characters."
        if not bad:
            return self.get_response(request)
        if wants_html(request):
            context = {"status": 400, "title": "Bad request", "detail": detail}
            return render(request, "dashboard/error.html", context, status=400)
        body = problem(
            400,
            ValidationFailed.code,
            ValidationFailed.title,
            detail,
            errors=[
                {"field": k.replace("\x00", "\\x00"), "message": "contains a NUL character"}
                for k in bad
            ],
        )
        return JsonResponse(body, status=400, content_type=PROBLEM_JSON)
