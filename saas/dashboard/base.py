"""The one wrapper every dashboard page uses: sign-in, the current organisation, the role check.

It mirrors ``saas.api.base.TenantAPIView`` for HTML and applies the same rule,
:class:`saas.tenancy.access.Access`: the organisation is the signed-in user's current one
(``session["organization_id"]``, chosen with the switcher), every object is read through the
tenant-scoped selectors with it (another tenant's id is a 404 page), the method's ``Action`` is
checked against the role table (a 403 page naming what is missing), writes that cost money are
refused while the organisation is suspended, and POSTs share the API's rate limit
(``saas.limits``) per user and organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import render

from saas.billing.selectors import PlanLimits, plan_limits_get
from saas.common.actor import Actor
from saas.common.errors import DomainError, NotFound
from saas.common.request_log import bind_organization
from saas.limits.ratelimit import rate_limit_check
from saas.tenancy.access import Access, NotAMember
from saas.tenancy.models import Membership, Organization
from saas.tenancy.permissions import Action


class Can:
    """``can.datasets_write`` in templates: whether the current access allows that action."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def __getattr__(self, name: str) -> bool:
        try:
            action = Action(name.replace("_", ".", 1))
        except ValueError:
            raise AttributeError(name) from None
        return self._access.allows(action)


@dataclass
class Tenant:
    """What a dashboard view knows about its caller (``request.tenant``)."""

    organization: Organization
    role: str
    memberships: list[Membership]
    actor: Actor
    can: Can
    access: Access

    @cached_property
    def limits(self) -> PlanLimits:
        """The organisation's plan and its limits, from billing (one query, on first use)."""
        return plan_limits_get(organization=self.organization)

    @property
    def plan(self) -> str:
        """The code of the organisation's plan (the layout shows it on every page)."""
        return self.limits.plan


def _current(request) -> Tenant | None:
    try:
        access = Access.for_session(request.user, request.session.get("organization_id"))
    except NotAMember:
        return None
    bind_organization(access.organization.pk)
    actor = Actor.for_user(request, request.user)
    assert access.role is not None  # a session's access always holds the member's role
    return Tenant(
        access.organization, access.role, list(access.memberships), actor, Can(access), access
    )


def error_page(request, status: int, title: str, detail: str):
    """An HTML error page (403, 404, 409, 429, …) inside the dashboard layout."""
    return render(
        request,
        "dashboard/error.html",
        {"status": status, "title": title, "detail": detail},
        status=status,
    )


class _Membership:
    """The requirement "any member of the organisation" (no action of the role table)."""

    def __repr__(self) -> str:
        return "MEMBERSHIP"


MEMBERSHIP = _Membership()
Requirement = Action | _Membership


def org_page(read: Requirement | None = None, write: Requirement | None = None):
    """Decorate a dashboard view taking ``(request, ...)``. Fails closed, like the API's base.

    ``read`` is what GET (and HEAD) needs, ``write`` what POST needs: an :class:`Action` of the
    role table, or :data:`MEMBERSHIP` for any member. A method with no requirement is refused
    (405, before the view runs), and a page declaring neither is a ``TypeError`` when it is
    decorated. The view finds ``request.tenant`` (a :class:`Tenant`). Domain errors it does not
    catch itself become error pages with their status (NotFound → 404, Conflict → 409, …).
    """
    if read is None and write is None:
        raise TypeError(
            "org_page needs read= and/or write=: the Action each method takes, or MEMBERSHIP"
        )
    allowed = {"GET": read, "HEAD": read, "POST": write}

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            requirement = allowed.get(request.method)
            if requirement is None:
                # No requirement declared for this method: refuse, never allow.
                return HttpResponseNotAllowed([m for m, r in allowed.items() if r is not None])
            tenant = _current(request)
            if tenant is None:
                return error_page(
                    request,
                    403,
                    "No organisation",
                    "You are not a member of any organisation. Ask an owner to invite you.",
                )
            request.tenant = tenant
            action = requirement if isinstance(requirement, Action) else None
            reason = tenant.access.denial(action) if action is not None else None
            if reason:
                return error_page(
                    request,
                    403,
                    "Not allowed",
                    f"{reason} Ask an owner or admin of this organisation.",
                )
            if (
                request.method == "POST"
                and action is not None
                and tenant.access.blocked_when_suspended(action)
            ):
                return error_page(
                    request,
                    403,
                    "Organisation suspended",
                    "This organisation is suspended: you can read, but not upload, "
                    "train or predict. Contact your account owner or support.",
                )
            if request.method == "POST":
                limits = tenant.limits
                decision = rate_limit_check(
                    organization_id=tenant.organization.pk,
                    principal=tenant.access.principal,
                    requests_per_key=limits.requests_per_key,
                    requests_per_organization=limits.requests_per_organization,
                )
                if decision is not None and not decision.allowed:
                    response = error_page(
                        request,
                        429,
                        "Too many requests",
                        f"Slow down: retry in {decision.retry_after_seconds} s.",
                    )
                    response["Retry-After"] = str(decision.retry_after_seconds)
                    return response
            try:
                return view(request, *args, **kwargs)
            except NotFound:
                return error_page(
                    request, 404, "Not found", "There is nothing here in this organisation."
                )
            except DomainError as exc:
                return error_page(request, exc.status, exc.title, exc.detail)

        return wrapper

    return decorate
