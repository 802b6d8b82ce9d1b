"""Support-session rules on every request while a staff user acts as a tenant user.

- the time box: past ``expires_at`` the impersonation is released back to the staff user
  (recorded as ``expired``) and the request is redirected to the console's support page (a
  ``/v1/`` call gets a 401 problem+json instead: an API client cannot follow a redirect to
  a sign-in page);
- read-only unless elevated: unsafe methods are refused with 403 (problem+json under /v1/,
  an HTML page elsewhere), except hijack's release and logout;
- ``request.support_session`` for the banner, and the staff user's id in
  ``current_impersonator`` so audit events of elevated writes name them.
"""

from __future__ import annotations

from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, login
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from hijack import signals  # type: ignore[import-untyped]

from saas.common.actor import Actor, current_impersonator
from saas.tenancy.impersonation import SESSION_KEY, active_session, end_support_session

SAFE = {"GET", "HEAD", "OPTIONS", "TRACE"}
EXEMPT = {"/hijack/release/", "/logout"}
READ_ONLY = "This support session is read-only: changes are refused. Start an elevated session to make changes."


class SupportSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.support_session = None
        if not request.session.get("hijack_history"):
            return self.get_response(request)
        session = active_session(request.session.get(SESSION_KEY))
        if (
            session is None
            or session.user_id != request.user.pk
            or session.expires_at <= timezone.now()
        ):
            return self._expire(request, session)
        request.support_session = session
        if not session.elevated and request.method not in SAFE and request.path not in EXEMPT:
            return _refuse(request)
        token = current_impersonator.set(session.staff_id)
        try:
            return self.get_response(request)
        finally:
            current_impersonator.reset(token)

    def _expire(self, request, session):
        """Release back to the staff user (hijack's own history), as hijack's release does."""
        history = request.session.get("hijack_history", [])
        hijacked = request.user
        hijacker = get_user_model().objects.filter(pk=history.pop()).first() if history else None
        if session is not None:
            end_support_session(
                actor=Actor.for_user(request, session.staff), session=session, how="expired"
            )
        if hijacker is None:
            request.session.flush()
            return _expired(request)
        backend = request.session[BACKEND_SESSION_KEY]
        with signals.no_update_last_login():
            login(request, hijacker, backend=backend)
        request.session["hijack_history"] = history
        request.session.pop(SESSION_KEY, None)
        signals.hijack_ended.send(
            sender=None, request=request, hijacker=hijacker, hijacked=hijacked
        )
        return _expired(request)


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    """An RFC 9457 problem for an API client (it cannot follow a page or a redirect)."""
    body = {
        "type": f"https://trainyard.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    return JsonResponse(body, status=status, content_type="application/problem+json")


def _expired(request):
    if request.path.startswith("/v1/"):
        return _problem(
            401,
            "support-session-expired",
            "Support session expired",
            "The support session ended; start a new one from the console.",
        )
    return HttpResponseRedirect("/console/support")


def _refuse(request):
    if request.path.startswith("/v1/"):
        return _problem(403, "support-session-read-only", "Support session is read-only", READ_ONLY)
    return render(
        request,
        "console/support_read_only.html",
        {"detail": READ_ONLY},
        status=403,
    )
