"""Reads of memberships, invitations and the audit log, always for one organisation."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from saas.accounts.models import User
from saas.common.errors import NotFound

from .models import AuditEvent, Invitation, Membership, Organization


def current_membership(
    *, user: User, wanted_organization_id: str | None
) -> tuple[Membership | None, list[Membership]]:
    """The signed-in ``user``'s memberships (by organisation name) and the current one: the
    organisation chosen with the switcher (``wanted_organization_id``) if still a member, else
    the first. Returns ``(membership or None, memberships)``."""
    memberships = list(
        Membership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization__name", "organization_id")
    )
    chosen = next(
        (m for m in memberships if m.organization_id == wanted_organization_id), None
    ) or next(iter(memberships), None)
    return chosen, memberships


def membership_role(*, organization_id: str, user_id: int) -> str | None:
    """The role of user ``user_id`` in the organisation, or None if not a member (one query)."""
    return (
        Membership.objects.filter(organization_id=organization_id, user_id=user_id)
        .values_list("role", flat=True)
        .first()
    )


def membership_role_subquery(*, organization_field: str, user_field: str) -> Subquery:
    """:func:`membership_role` as a scalar subquery over the outer query's columns
    ``organization_field`` and ``user_field`` (NULL when not a member), so a read can carry a
    principal's role in the same SQL statement (e.g. an API key's creator's)."""
    return Subquery(
        Membership.objects.filter(
            organization_id=OuterRef(organization_field), user_id=OuterRef(user_field)
        ).values("role")[:1]
    )


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    """The organisation's members (with their users)."""
    return Membership.objects.filter(organization=organization).select_related("user")


def membership_get(*, organization: Organization, member_id: str) -> Membership:
    """A member by its public id (``mem_<n>``). Raises NotFound if missing or another tenant's."""
    pk = member_id.removeprefix("mem_")
    membership = (
        membership_list(organization=organization).filter(pk=int(pk)).first()
        if pk.isdigit()
        else None
    )
    if membership is None:
        raise NotFound(f"No member {member_id!r}.")
    return membership


def invitation_list(*, organization: Organization, pending: bool = False) -> QuerySet[Invitation]:
    """The organisation's invitations; with ``pending``, only those still usable (neither
    accepted nor revoked, not expired)."""
    qs = Invitation.objects.for_tenant(organization)
    if pending:
        qs = qs.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )
    return qs


def audit_event_list(
    *, organization: Organization, action: str | None = None
) -> QuerySet[AuditEvent]:
    """The audit log, optionally one ``action`` (e.g. ``api_key.created``)."""
    qs = AuditEvent.objects.for_tenant(organization).select_related("actor_user")
    return qs.filter(action=action) if action else qs
