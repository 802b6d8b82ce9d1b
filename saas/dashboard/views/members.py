"""Member pages: members and pending invitations, inviting, roles, removing and leaving."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from saas.common.errors import DomainError
from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy
from saas.tenancy.models import Membership
from saas.tenancy.permissions import Action

from ..base import error_page, org_page
from ..forms import InviteForm, RoleForm
from .common import LIST_LIMIT, bound, page


@org_page(read=Action.MEMBERS_READ, write=Action.MEMBERS_MANAGE)
def members(request):
    """Members and their roles; owners and admins also invite and change roles."""
    org = request.tenant.organization
    form = InviteForm(bound(request))
    grantable = request.tenant.access.grantable_roles()
    roles = [(v, label) for v, label in Membership.Role.choices if v in grantable]
    cast(forms.ChoiceField, form.fields["role"]).choices = roles  # InviteForm.role
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = tenancy.invitation_create(
                    organization=org,
                    access=request.tenant.access,
                    actor=request.tenant.actor,
                    **form.cleaned_data,
                )
            except DomainError as exc:
                form.add_error("email", exc.detail)
                status = exc.status
            else:
                messages.success(request, f"Invitation emailed to {issued.invitation.email}.")
                return redirect("dashboard:members")
        else:
            status = 400
    can_manage = request.tenant.can.members_manage
    return page(
        request,
        "dashboard/members/list.html",
        {
            "members": [
                (f"mem_{m.pk}", m)
                for m in tenancy_selectors.membership_list(organization=org)[:500]
            ],
            "invitations": tenancy_selectors.invitation_list(organization=org, pending=True)[
                :LIST_LIMIT
            ]
            if can_manage
            else [],
            "form": form,
            "roles": roles,
        },
        status=status,
    )


@org_page(write=Action.MEMBERS_MANAGE)
@require_POST
def invitation_revoke(request, invitation_id: str):
    """Revoke a pending invitation; its emailed link stops working."""
    inv = tenancy.invitation_revoke(
        organization=request.tenant.organization,
        invitation_id=invitation_id,
        access=request.tenant.access,
        actor=request.tenant.actor,
    )
    messages.success(request, f"Invitation for {inv.email} revoked.")
    return redirect("dashboard:members")


@org_page(write=Action.MEMBERS_MANAGE)
@require_POST
def member_role(request, member_id: str):
    """Change a member's role (owner rules are enforced by the tenancy service)."""
    org = request.tenant.organization
    m = tenancy_selectors.membership_get(organization=org, member_id=member_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a role.")
        return redirect("dashboard:members")
    try:
        tenancy.membership_change_role(
            membership=m,
            role=form.cleaned_data["role"],
            access=request.tenant.access,
            actor=request.tenant.actor,
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, f"{m.user.email} is now {form.cleaned_data['role']}.")
    return redirect("dashboard:members")


@org_page(write=Action.MEMBERS_READ)
@require_POST
def member_remove(request, member_id: str):
    """Remove a member (members.manage), or leave the organisation yourself."""
    org = request.tenant.organization
    m = tenancy_selectors.membership_get(organization=org, member_id=member_id)
    leaving = m.user_id == request.user.pk
    if not leaving and not request.tenant.can.members_manage:
        return error_page(
            request,
            403,
            "Not allowed",
            f"Your role ({request.tenant.role}) does not allow '{Action.MEMBERS_MANAGE}'.",
        )
    try:
        tenancy.membership_remove(
            membership=m, access=request.tenant.access, actor=request.tenant.actor
        )
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:members")
    if leaving:
        request.session.pop("organization_id", None)
        messages.success(request, f"You left {org.name}.")
        return redirect("dashboard:home")
    messages.success(request, f"{m.user.email} removed.")
    return redirect("dashboard:members")
