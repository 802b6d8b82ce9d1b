"""Memberships: change a member's role, remove a member or leave, under the owner rules."""

from __future__ import annotations

from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import Conflict, ValidationFailed

from ..access import Access
from ..audit import audit_record
from ..models import Membership

Role = Membership.Role


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
