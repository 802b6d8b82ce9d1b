"""Reads of memberships, invitations and the audit log, always for one organisation."""

from __future__ import annotations

from saas.common.errors import NotFound

from .models import AuditEvent, Invitation, Membership, Organization


def membership_list(*, organization: Organization):
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


def invitation_list(*, organization: Organization):
    return Invitation.objects.for_tenant(organization)


def audit_event_list(*, organization: Organization, action: str | None = None):
    """The audit log, optionally one ``action`` (e.g. ``api_key.created``)."""
    qs = AuditEvent.objects.for_tenant(organization).select_related("actor_user")
    return qs.filter(action=action) if action else qs
