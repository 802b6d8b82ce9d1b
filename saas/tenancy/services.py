"""Writes for organisations, memberships and invitations (each with its audit event).

Every write takes ``actor`` (keyword, required): the user or API key behind it, or
``Actor.system()`` for the command line and tasks. It is recorded in the same transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from saas.accounts.models import User
from saas.common.actor import Actor
from saas.common.errors import Conflict, NotFound, ValidationFailed

from .access import Access
from .audit import audit_record
from .models import Invitation, Membership, Organization

Role = Membership.Role


@transaction.atomic
def organization_create(
    *, slug: str, name: str, owner_email: str, plan: str = "free", actor: Actor
) -> Organization:
    """Create an organisation and make ``owner_email`` (created if new) its owner; records
    ``organization.created``. Its billing account is opened on the plan with code ``plan`` in
    the same transaction (by billing's receiver of the organisation's first save).

    Raises ``django.db.IntegrityError`` if the slug is taken, and ``ValidationFailed`` (from
    billing) if no plan has code ``plan``; either rolls the whole creation back.
    """
    org = Organization(slug=slug, name=name)
    org.initial_plan = plan
    org.save(force_insert=True)
    user = _user_for_email(owner_email)
    membership = Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    audit_record(
        organization_id=org.pk,
        action="organization.created",
        actor=actor,
        target_type="organization",
        target_id=org.pk,
        slug=slug,
        plan=plan,
        owner=user.email,
        membership=membership.pk,
    )
    return org


def _organization_with_free_slug(*, name: str, owner_email: str, actor: Actor) -> Organization:
    """``organization_create`` with a slug made from ``name`` plus a random suffix."""
    base = slugify(name)[:40] or "org"
    for _ in range(5):
        slug = f"{base}-{get_random_string(6, 'abcdefghijklmnopqrstuvwxyz0123456789')}"
        try:
            with transaction.atomic():
                return organization_create(
                    slug=slug, name=name, owner_email=owner_email, actor=actor
                )
        except IntegrityError:
            continue
    raise IntegrityError("could not find a free organisation slug")


def _set_status(
    *, organization: Organization, status: str, action: str, actor: Actor, reason: str
) -> Organization:
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    if locked.status == status:
        return locked  # already there: nothing changed, nothing to audit
    old = locked.status
    Organization.objects.filter(pk=locked.pk).update(status=status)
    locked.status = status
    audit_record(
        organization_id=locked.pk,
        action=action,
        actor=actor,
        target_type="organization",
        target_id=locked.pk,
        old_status=old,
        new_status=status,
        reason=reason,
    )
    return locked


@transaction.atomic
def organization_suspend(
    *, organization: Organization, actor: Actor, reason: str = ""
) -> Organization:
    """Suspend ``organization``: it can still sign in and read, but not upload, train or predict.

    Records ``organization.suspended`` (with ``reason``); suspending a suspended organisation
    changes nothing and records nothing. Returns the organisation as now stored.
    """
    return _set_status(
        organization=organization,
        status=Organization.Status.SUSPENDED,
        action="organization.suspended",
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def organization_reactivate(
    *, organization: Organization, actor: Actor, reason: str = ""
) -> Organization:
    """Lift a suspension; records ``organization.reactivated`` (a no-op if already active)."""
    return _set_status(
        organization=organization,
        status=Organization.Status.ACTIVE,
        action="organization.reactivated",
        actor=actor,
        reason=reason,
    )


@transaction.atomic
def account_signup(
    *,
    email: str,
    password: str,
    organization_name: str | None = None,
    invitation_token: str | None = None,
    actor: Actor,
) -> Membership:
    """Sign a new person up: create the user (the email is the login) and either a new
    organisation they own, on the free plan, or — with ``invitation_token`` — join the
    inviting one with the invited role. Returns the membership.

    ``actor`` is the anonymous client (its ``ip``); the audit events name the new user as
    their actor. The caller validates the email (not taken) and password (Django's
    validators). Raises NotFound for an unusable invitation, ValidationFailed if neither an
    organisation name nor an invitation is given.
    """
    if not organization_name and not invitation_token:
        raise ValidationFailed(
            "Name an organisation or use an invitation.",
            errors=[{"field": "organization", "message": "this field is required"}],
        )
    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    actor = replace(actor, user_id=user.pk)
    if invitation_token:
        return invitation_accept(token=invitation_token, user=user, actor=actor)
    assert organization_name  # checked above: no invitation means a name was given
    org = _organization_with_free_slug(name=organization_name, owner_email=user.email, actor=actor)
    return Membership.objects.select_related("organization", "user").get(
        organization=org, user=user
    )


def _user_for_email(email: str) -> User:
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _owners_locked(organization_id: str) -> int:
    # Lock every owner row: two concurrent demotions cannot both see "another owner remains".
    return len(
        list(
            Membership.objects.select_for_update().filter(
                organization_id=organization_id, role=Role.OWNER
            )
        )
    )


def _check_owner_rules(
    *, manages_owners: bool, membership: Membership, new_role: str | None
) -> None:
    touches_owner = membership.role == Role.OWNER or new_role == Role.OWNER
    if touches_owner and not manages_owners:
        raise Conflict("Only an owner can grant, change or remove the owner role.")
    if (
        membership.role == Role.OWNER
        and new_role != Role.OWNER
        and _owners_locked(membership.organization_id) <= 1
    ):
        raise Conflict(
            "The last owner cannot leave or be demoted; make someone else an owner first."
        )


@transaction.atomic
def membership_change_role(
    *, membership: Membership, role: str, access: Access, actor: Actor
) -> Membership:
    """Change a member's role, as ``access`` (the owner rule is :attr:`Access.manages_owners`).
    Raises ValidationFailed (unknown role) or Conflict (owner rules, the last owner)."""
    if role not in Role.values:
        raise ValidationFailed(
            "Unknown role.",
            errors=[{"field": "role", "message": f"one of {', '.join(Role.values)}"}],
        )
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    _check_owner_rules(manages_owners=access.manages_owners, membership=locked, new_role=role)
    old = locked.role
    Membership.objects.filter(pk=locked.pk).update(role=role)
    audit_record(
        organization_id=locked.organization_id,
        action="membership.role_changed",
        actor=actor,
        target_type="membership",
        target_id=locked.pk,
        user=locked.user.email,
        old_role=old,
        new_role=role,
    )
    return Membership.objects.select_related("user").get(pk=locked.pk)


@transaction.atomic
def membership_remove(*, membership: Membership, access: Access, actor: Actor) -> None:
    """Remove a member (or leave), as ``access``. The last owner cannot; only owners remove
    owners (anyone may leave)."""
    locked = Membership.objects.select_for_update().get(pk=membership.pk)
    leaving_self = actor.user_id == locked.user_id
    if not leaving_self or locked.role == Role.OWNER:
        _check_owner_rules(
            manages_owners=access.manages_owners or leaving_self,
            membership=locked,
            new_role=None,
        )
    Membership.objects.filter(pk=locked.pk).delete()
    audit_record(
        organization_id=locked.organization_id,
        action="membership.removed",
        actor=actor,
        target_type="membership",
        target_id=locked.pk,
        user=locked.user.email,
        role=locked.role,
    )


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
    *, organization: Organization, invitation_id: str, actor: Actor
) -> Invitation:
    """Revoke a pending invitation of ``organization`` (its link stops working).

    Raises NotFound for an unknown id, another tenant's, or one already accepted or revoked.
    """
    inv = (
        Invitation.objects.for_tenant(organization)
        .select_for_update()
        .filter(pk=invitation_id, accepted_at__isnull=True, revoked_at__isnull=True)
        .first()
    )
    if inv is None:
        raise NotFound(f"No pending invitation {invitation_id!r}.")
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


def invitation_peek(*, token: str) -> Invitation | None:
    """The pending invitation a token stands for (to show whom it invites before signing in),
    or None if it is unknown, used, revoked or expired. Accepts nothing."""
    if not token:
        return None
    inv = (
        Invitation.objects.unscoped_all_tenants()  # the token is what identifies the tenant
        .select_related("organization")
        .filter(token_sha256=_digest(token))
        .first()
    )
    if inv is None or inv.accepted_at or inv.revoked_at or inv.expires_at <= timezone.now():
        return None
    return inv


@transaction.atomic
def invitation_accept(*, token: str, user: User, actor: Actor) -> Membership:
    """Join the inviting organisation as ``user``. Raises NotFound for an unknown, used, revoked
    or expired token (the same answer for all four)."""
    inv = (
        Invitation.objects.unscoped_all_tenants()  # the token is what identifies the tenant
        .select_for_update()
        .filter(token_sha256=_digest(token or ""))
        .first()
    )
    if inv is None or inv.accepted_at or inv.revoked_at or inv.expires_at <= timezone.now():
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
