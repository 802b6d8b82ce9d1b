"""Writing the audit log (inside the transaction of the change it records)."""

from __future__ import annotations

from typing import Any

from saas.common.actor import Actor, current_impersonator

from .models import AuditEvent


def audit_record(
    *,
    organization_id: str,
    action: str,
    actor: Actor | None,
    target_type: str,
    target_id: str | int,
    **data: Any,
) -> AuditEvent:
    """Append one audit event. ``actor`` None means the system (a task, the CLI).

    During a support session the staff user's id is added as ``data["impersonator_id"]``, so
    a write shows both the tenant user it was made as and the staff user who made it.
    """
    actor = actor or Actor.system()
    impersonator = current_impersonator.get()
    if impersonator is not None:
        data.setdefault("impersonator_id", impersonator)
    return AuditEvent.objects.for_tenant(organization_id).create(
        organization_id=organization_id,
        action=action,
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        ip=actor.ip,
        target_type=target_type,
        target_id=str(target_id),
        data=data,
    )
