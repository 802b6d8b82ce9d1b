"""Console pages: support sessions (staff acting as a tenant user through django-hijack)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import render
from django.urls import URLPattern, path
from hijack.views import AcquireUserView  # type: ignore[import-untyped]

from saas.tenancy.impersonation import (
    SESSION_KEY,
    can_impersonate,
    recent_sessions,
    start_support_session,
)

from ..base import console_error, staff_page


class _Aborted(Exception):
    """Hijack's acquire view did not log in as the user: undo the recorded session."""


@staff_page(read=True)
def support(request):
    """GET /console/support: the start form (``?email=`` prefills it) and recent sessions."""
    return render(
        request,
        "console/support.html",
        {
            "section": "support",
            "sessions": recent_sessions(),
            "email": request.GET.get("email", ""),
            "minutes": settings.TRAINYARD_SUPPORT_SESSION_MINUTES,
        },
    )


@staff_page(write=True)
def start(request):
    """POST /console/support/start (``email``, ``reason`` 10+ chars, ``elevated``): act as that
    user through hijack's acquire view, recording the session and its audit events in the same
    transaction. 400 for a missing reason or unknown email, 403 for a staff/superuser target."""
    email = request.POST.get("email", "").strip()
    reason = request.POST.get("reason", "").strip()
    elevated = request.POST.get("elevated") in {"1", "on", "true"}
    if len(reason) < 10:
        return console_error(
            request, 400, "Reason required", "State a reason of at least 10 characters."
        )
    user = get_user_model().objects.filter(email__iexact=email).first() if email else None
    if user is None:
        return console_error(request, 400, "Unknown user", f"No user with email {email!r}.")
    staff = request.user
    if not can_impersonate(hijacker=staff, hijacked=user):
        return console_error(
            request, 403, "Not allowed", "Staff and superuser accounts cannot be impersonated."
        )
    try:
        with transaction.atomic():
            session = start_support_session(
                actor=request.actor, staff=staff, user=user, reason=reason, elevated=elevated
            )
            post = request.POST.copy()
            post["user_pk"] = str(user.pk)
            post["next"] = "/"
            request.POST = post
            response = AcquireUserView.as_view()(request)
            if response.status_code != 302 or request.user.pk != user.pk:
                raise _Aborted
    except _Aborted:
        return console_error(request, 403, "Not allowed", "The support session could not start.")
    request.session[SESSION_KEY] = session.pk
    return response


urlpatterns: list[URLPattern] = [
    path("support", support, name="support"),
    path("support/start", start, name="support-start"),
]
