"""Invitations: create (emailed, single-use, hashed token), revoke, peek and accept."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from saas.accounts.models import User
from saas.common.actor import Actor
from saas.common.errors import Conflict, NotFound, ValidationFailed

from ..access import Access
from ..audit import audit_record
from ..models import Invitation, Membership, Organization
from ..permissions import Action
from ..selectors import membership_role

Role = Membership.Role


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # only ever in the email


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invitation_create(
    *, organization: Organization, email: str, role: str, access: Access, actor: Actor
) -> IssuedInvitation:
    """Invite ``email`` with ``role`` and send the email (Django's email backend).

    The token is single-use and expires after ``TRAINYARD_INVITATION_TTL_DAYS``. Only owners may
    invite owners. Raises ValidationFailed or Conflict (already a member).
    """
    if role not in Role.values:
        raise ValidationFailed(
            "Unknown role.",
            errors=[{"field": "role", "message": f"one of {', '.join(Role.values)}"}],
        )
    if role == Role.OWNER and not access.manages_owners:
        raise Conflict("Only an owner can invite another owner.")
    if Membership.objects.filter(organization=organization, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of this organisation.")
    # A new invitation to the same address replaces any pending one (one live link per person).
    Invitation.objects.for_tenant(organization).filter(
        email__iexact=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=timezone.now())
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.for_tenant(organization).create(
        organization=organization,
        email=email,
        role=role,
        token_sha256=_digest(token),
        invited_by_id=actor.user_id,
        expires_at=timezone.now() + timedelta(days=settings.TRAINYARD_INVITATION_TTL_DAYS),
    )
    audit_record(
        organization_id=organization.pk,
        action="invitation.created",
        actor=actor,
        target_type="invitation",
        target_id=invitation.pk,
        email=email,
        role=role,
    )
    link = f"{settings.TRAINYARD_PUBLIC_URL.rstrip('/')}/invitations/accept?token={token}"
    inviter = (
        get_user_model().objects.filter(pk=actor.user_id).values_list("email", flat=True).first()
        if actor.user_id is not None
        else None
    )
    transaction.on_commit(
        lambda: send_mail(
            subject=f"You are invited to {organization.name} on Trainyard",
            message=(
                f"{inviter or 'An administrator'} invited you to join {organization.name} "
                f"on Trainyard as {role}.\n\n"
                f"Accept (valid {settings.TRAINYARD_INVITATION_TTL_DAYS} days, once): {link}\n"
                f"or POST the token to /v1/invitations/accept while signed in: {token}\n"
            ),
            from_email=None,
            recipient_list=[email],
        )
    )
    return IssuedInvitation(invitation=invitation, token=token)


@transaction.atomic
def invitation_revoke(
    *, organization: Organization, invitation_id: str, access: Access, actor: Actor
) -> Invitation:
    """Revoke a pending invitation of ``organization`` (its link stops working), as ``access``.

    Raises NotFound for an unknown id, another tenant's, or one already accepted or revoked;
    Conflict for an invitation to the owner role unless ``access`` manages owners (the owner
    rule: only owners grant, change or remove ownership, pending grants included).
    """
    inv = (
        Invitation.objects.for_tenant(organization)
        .select_for_update()
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if inv is None:
        raise NotFound(f"No pending invitation {invitation_id!r}.")
    if inv.role == Role.OWNER and not access.manages_owners:
        raise Conflict("Only an owner can revoke an invitation to the owner role.")
    inv.revoked_at = timezone.now()
    Invitation.objects.for_tenant(organization).filter(pk=inv.pk).update(revoked_at=inv.revoked_at)
    audit_record(
        organization_id=organization.pk,
        action="invitation.revoked",
        actor=actor,
        target_type="invitation",
        target_id=inv.pk,
        email=inv.email,
    )
    return inv


def _inviter_may_still_grant(inv: Invitation, *, lock: bool = False) -> bool:
    """True while the invitation's inviter could still issue it: a current member of the
    organisation whose role may invite (``members.manage``) and may grant the invited role
    (only owners grant owner). An invitation is only as good as its inviter's current right, so
    one left pending by a member since removed or demoted cannot be used to rejoin. Invitations
    with no inviter were issued by an operator (``Actor.system()``) and stay good.

    ``lock`` reads the inviter's membership row FOR UPDATE: a removal or role change of the
    inviter (which locks that row too, ``services.memberships``) is then either seen here or
    waits until the acceptance has committed, never slips in between check and join."""
    if inv.invited_by_id is None:
        return True
    if lock:
        role = (
            Membership.objects.select_for_update()
            .filter(organization_id=inv.organization_id, user_id=inv.invited_by_id)
            .values_list("role", flat=True)
            .first()
        )
    else:
        role = membership_role(organization_id=inv.organization_id, user_id=inv.invited_by_id)
    access = Access(organization=inv.organization, role=role, user_id=inv.invited_by_id)
    if not access.allows(Action.MEMBERS_MANAGE):
        return False
    return inv.role in access.grantable_roles()


def _usable(inv: Invitation | None, *, lock: bool = False) -> bool:
    return (
        inv is not None
        and not inv.accepted_at
        and not inv.revoked_at
        and inv.expires_at > timezone.now()
        and _inviter_may_still_grant(inv, lock=lock)
    )


def invitation_peek(*, token: str) -> Invitation | None:
    """The pending invitation a token stands for (to show whom it invites before signing in),
    or None if it is unknown, used, revoked or expired, or its inviter may no longer grant it
    (removed, or demoted below the invited role). Accepts nothing."""
    if not token:
        return None
    inv = (
        Invitation.objects.unscoped_all_tenants()  # the token is what identifies the tenant
        .select_related("organization")
        .filter(token_sha256=_digest(token))
        .first()
    )
    return inv if _usable(inv) else None


@transaction.atomic
def invitation_accept(*, token: str, user: User, actor: Actor) -> Membership:
    """Join the inviting organisation as ``user``.

    The inviter's right is checked now, not when they invited: the invitation is refused if
    its inviter is no longer a member, or no longer has a role that may invite with the
    invited role (:func:`_inviter_may_still_grant`). Raises NotFound for an unknown, used,
    revoked or expired token, or one its inviter may no longer grant (the same answer for all:
    the token's holder learns nothing about the organisation's members).
    """
    inv = (
        Invitation.objects.unscoped_all_tenants()  # the token is what identifies the tenant
        .select_for_update(of=("self",))
        .select_related("organization")
        .filter(token_sha256=_digest(token or ""))
        .first()
    )
    if inv is None or not _usable(inv, lock=True):
        raise NotFound("This invitation is unknown, already used, revoked or expired.")
    if inv.email.lower() != (user.email or "").lower():
        raise NotFound("This invitation is unknown, already used, revoked or expired.")
    Invitation.objects.for_tenant(inv.organization_id).filter(pk=inv.pk).update(
        accepted_at=timezone.now()
    )
    membership, _ = Membership.objects.get_or_create(
        organization_id=inv.organization_id, user=user, defaults={"role": inv.role}
    )
    audit_record(
        organization_id=inv.organization_id,
        action="membership.added",
        actor=actor,
        target_type="membership",
        target_id=membership.pk,
        user=user.email,
        role=membership.role,
        invitation=inv.pk,
    )
    return membership
