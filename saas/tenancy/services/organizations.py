"""Organisations: create (with their owner), suspend and reactivate, each audited."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.crypto import get_random_string
from django.utils.text import slugify

from saas.accounts.models import User
from saas.common.actor import Actor

from ..audit import audit_record
from ..models import Membership, Organization

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


def _user_for_email(email: str) -> User:
    User = get_user_model()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(username=email, email=email)
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user
