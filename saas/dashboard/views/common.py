"""What every dashboard page module shares: binding a form and rendering a page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

#: The most rows a list page shows (datasets, jobs, models, keys, invitations).
LIST_LIMIT = 100


def bound(request: HttpRequest):
    """Form data to bind: the POST (even an empty one, so missing fields are errors) or None."""
    return request.POST if request.method == "POST" else None


def page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    """Render ``template`` with ``context`` (plus the dashboard context processor) as ``status``."""
    return render(request, template, context, status=status)
