"""Sign-up, invitation links and switching the current organisation."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from saas.common.actor import Actor, client_ip
from saas.common.errors import DomainError
from saas.tenancy import services as tenancy

from ..base import MEMBERSHIP, error_page, org_page
from ..forms import SignupForm
from .common import bound, page


def signup(request):
    """Create a user and an organisation on the free plan (or join one with ``?invitation=``)."""
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    token = request.GET.get("invitation") or request.POST.get("invitation") or ""
    invitation = tenancy.invitation_peek(token=token) if token else None
    form = SignupForm(bound(request), initial={"email": getattr(invitation, "email", "")})
    if invitation is not None:
        form.fields["organization"].required = False
        form.fields["organization"].widget = form.fields["organization"].hidden_widget()
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if invitation is not None and data["email"].lower() != invitation.email.lower():
            form.add_error("email", f"This invitation is for {invitation.email}.")
        else:
            membership = tenancy.account_signup(
                email=data["email"],
                password=data["password"],
                organization_name=data["organization"] if invitation is None else None,
                invitation_token=token if invitation is not None else None,
                actor=Actor(ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES)),
            )
            user, org = membership.user, membership.organization
            login(request, user, backend="saas.accounts.backends.EmailBackend")
            request.session["organization_id"] = org.pk
            messages.success(
                request,
                f"Welcome to Trainyard. You joined {org.name}."
                if invitation is not None
                else f"Welcome to Trainyard. {org.name} is ready.",
            )
            return redirect("dashboard:home")
    return page(
        request,
        "dashboard/auth/signup.html",
        {"form": form, "invitation": invitation, "token": token},
    )


def invitation_accept(request):
    """The emailed invitation link: sign in (or sign up) as the invited email, then accept."""
    token = request.GET.get("token") or request.POST.get("token") or ""
    invitation = tenancy.invitation_peek(token=token)
    if invitation is None:
        return error_page(
            request,
            404,
            "Invitation not found",
            "This invitation is unknown, already used, revoked or expired. Ask for a new one.",
        )
    if request.method == "POST" and request.user.is_authenticated:
        try:
            membership = tenancy.invitation_accept(
                token=token, user=request.user, actor=Actor.for_user(request, request.user)
            )
        except DomainError as exc:
            return error_page(request, exc.status, exc.title, exc.detail)
        request.session["organization_id"] = membership.organization_id
        messages.success(request, f"You joined {membership.organization.name}.")
        return redirect("dashboard:home")
    return page(
        request,
        "dashboard/auth/invitation.html",
        {
            "invitation": invitation,
            "token": token,
            "email_matches": request.user.is_authenticated
            and request.user.email.lower() == invitation.email.lower(),
        },
    )


@org_page(write=MEMBERSHIP)
@require_POST
def switch_organization(request):
    """Make another of the user's organisations the current one (the API follows it too)."""
    wanted = request.POST.get("organization", "")
    if not any(m.organization_id == wanted for m in request.tenant.memberships):
        return error_page(request, 404, "Not found", "You are not a member of that organisation.")
    request.session["organization_id"] = wanted
    return redirect("dashboard:home")
