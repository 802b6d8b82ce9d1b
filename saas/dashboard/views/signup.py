"""Sign-up, invitation links and switching the current organisation."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from saas.common.actor import Actor, client_ip
from saas.common.errors import DomainError
from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy

from ..auth import throttled
from ..base import MEMBERSHIP, error_page, org_page
from ..forms import SignupConfirmForm, SignupForm
from .common import bound, page


@throttled("signup")
def signup(request):
    """Create a user and an organisation on the free plan (or join one with ``?invitation=``).

    Without an invitation the answer is always "check your email", whether or not the address
    has an account (``tenancy.account_signup_request``: a new account is confirmed by an
    emailed link; an existing one's owner is told someone tried). With an invitation (whose
    token was emailed to that address) the account is created and signed in at once.
    """
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
        actor = Actor(ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES))
        if invitation is None:
            tenancy.account_signup_request(
                email=data["email"],
                password=data["password"],
                organization_name=data["organization"],
                actor=actor,
            )
            return redirect("dashboard:signup_sent")
        if data["email"].lower() != invitation.email.lower():
            form.add_error("email", f"This invitation is for {invitation.email}.")
        elif get_user_model().objects.filter(email__iexact=data["email"]).exists():
            # Only the holder of the invitation (sent to this address) learns this.
            form.add_error("email", "An account with this email exists. Log in to accept.")
        else:
            membership = tenancy.account_signup(
                email=data["email"],
                password=data["password"],
                invitation_token=token,
                actor=actor,
            )
            user, org = membership.user, membership.organization
            login(request, user, backend="saas.accounts.backends.EmailBackend")
            request.session["organization_id"] = org.pk
            messages.success(request, f"Welcome to Trainyard. You joined {org.name}.")
            return redirect("dashboard:home")
    return page(
        request,
        "dashboard/auth/signup.html",
        {"form": form, "invitation": invitation, "token": token},
    )


def signup_sent(request):
    """After a sign-up: the same page whether the address was new or already had an account."""
    return page(request, "dashboard/auth/signup_sent.html", {})


@throttled("signup")
def signup_confirm(request, uidb64: str, token: str):
    """The emailed confirmation link: with the password chosen at sign-up, activate the
    account and sign in. A bad or used link, or a wrong password, is the same answer."""
    if tenancy.account_confirm_user(uidb64=uidb64, token=token) is None:
        return error_page(
            request,
            404,
            "This link has expired",
            "Confirmation links work once and expire. Sign up again to get a new one.",
        )
    form = SignupConfirmForm(bound(request))
    if request.method == "POST" and form.is_valid():
        user = tenancy.account_confirm(
            uidb64=uidb64,
            token=token,
            password=form.cleaned_data["password"],
            actor=Actor(ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES)),
        )
        if user is None:
            form.add_error("password", "This is not the password chosen at sign-up.")
        else:
            login(request, user, backend="saas.accounts.backends.EmailBackend")
            membership, _ = tenancy_selectors.current_membership(
                user=user, wanted_organization_id=None
            )
            if membership is not None:
                request.session["organization_id"] = membership.organization_id
                messages.success(
                    request, f"Welcome to Trainyard. {membership.organization.name} is ready."
                )
            return redirect("dashboard:home")
    return page(request, "dashboard/auth/signup_confirm.html", {"form": form})


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
