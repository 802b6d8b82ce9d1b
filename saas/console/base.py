"""The one wrapper every console page uses: staff only, 404 for everyone else.

Mirrors :func:`saas.dashboard.base.org_page` for operators. The rule:

- anonymous: a redirect to the admin sign-in (``/admin/login/?next=…``), which takes the same
  per-address limit and django-axes lockout as the dashboard's;
- signed in but not ``is_staff`` (a tenant owner, say): :class:`~django.http.Http404`, the
  project's ordinary 404, so nobody learns the console exists;
- staff: the view runs with ``request.actor`` (an :class:`~saas.common.actor.Actor` for the
  staff user and client IP) to hand to the services it calls.

``read``/``write`` say which methods a page takes (GET/HEAD and POST); any other method is a
405, and a page that declares neither is a ``TypeError`` when decorated (fail closed).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import render

from saas.common.actor import Actor
from saas.common.errors import DomainError, NotFound


def staff_page(*, read: bool = False, write: bool = False):
    """Decorate a console view ``(request, ...)``; see the module docstring for the rule.

    Domain errors the view does not catch become console error pages with their status
    (NotFound → 404, Conflict → 409, ValidationFailed → 400…).

    Raises:
        TypeError: at decoration time, when neither ``read`` nor ``write`` is set.
    """
    if not (read or write):
        raise TypeError("staff_page needs read=True and/or write=True")
    allowed = {"GET": read, "HEAD": read, "POST": write}

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url="/admin/login/")
            if not (user.is_active and user.is_staff):
                raise Http404
            if not allowed.get(request.method):
                return HttpResponseNotAllowed([m for m, ok in allowed.items() if ok])
            request.actor = Actor.for_user(request, user)
            try:
                return view(request, *args, **kwargs)
            except NotFound:
                raise Http404 from None
            except DomainError as exc:
                return console_error(request, exc.status, exc.title, str(exc))

        wrapper.console_page = True  # type: ignore[attr-defined]  # the URL walk in tests/saas/console checks it
        return wrapper

    return decorate


def console_error(request, status: int, title: str, detail: str):
    """An HTML error page inside the console layout."""
    return render(
        request,
        "console/error.html",
        {"status": status, "title": title, "detail": detail},
        status=status,
    )
