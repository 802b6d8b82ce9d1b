"""Request guards that hold for every route, the API's and the dashboard's alike."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from saas.common.errors import ValidationFailed

from .errors import PROBLEM_JSON, not_found_view, problem, wants_html


class RejectNulMiddleware:
    """Refuse a NUL character in the path (404) or the query string (400, naming each
    parameter) before any view runs.

    PostgreSQL text cannot hold NUL, so such an id or filter can match no row, and reaching a
    query with it would be a DataError (a 500) in whichever view got it first.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return not_found_view(request)
        bad = sorted(
            k
            for k, values in request.GET.lists()
            if "\x00" in k or any("\x00" in v for v in values)
        )
        if not bad:
            return self.get_response(request)
        detail = "Query parameters cannot contain NUL characters."
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
