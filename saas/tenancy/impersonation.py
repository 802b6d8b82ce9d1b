"""Support sessions: staff acting as a tenant user through django-hijack, time-boxed and audited.

The hijack itself (the login swap, ``hijack_history`` in the session) is django-hijack's; this
module decides who may be impersonated, records the session with its reason and elevation, and
writes ``support.session_started`` / ``support.session_ended`` audit events into every
organisation the impersonated user belongs to, so the tenant's own audit log shows them.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from saas.common.actor import Actor

from .audit import audit_record
from .models import Membership, SupportSession

SESSION_KEY = "support_session_id"
MIN_REASON = 10


def can_impersonate(*, hijacker, hijacked) -> bool:
    """HIJACK_PERMISSION_CHECK: an active staff user may act as an active user who is neither
    staff nor superuser (so nobody gains operator powers through a support session)."""
    if hijacked is None or not hijacked.is_active:
        return False
    if not (hijacker.is_active and hijacker.is_staff):
        return False
    return not (hijacked.is_staff or hijacked.is_superuser)


def _org_ids(user_id: int) -> list[str]:
    return list(
        Membership.objects.filter(user_id=user_id)
        .order_by("organization_id")
        .values_list("organization_id", flat=True)
    )


def start_support_session(
    *, actor: Actor, staff, user, reason: str, elevated: bool
) -> SupportSession:
    """Record a support session of ``staff`` as ``user`` lasting
    ``TRAINYARD_SUPPORT_SESSION_MINUTES``, with one ``support.session_started`` audit event per
    organisation of ``user``. Call inside the transaction that performs the hijack.

    Raises:
        ValueError: ``reason`` shorter than 10 characters (after trimming).
    """
    reason = reason.strip()
    if len(reason) < MIN_REASON:
        raise ValueError(f"State a reason of at least {MIN_REASON} characters.")
    with transaction.atomic():
        session = SupportSession.objects.create(
            staff=staff,
            user=user,
            reason=reason,
            elevated=elevated,
            expires_at=timezone.now()
            + timedelta(minutes=settings.TRAINYARD_SUPPORT_SESSION_MINUTES),
        )
        _audit_in_each_org(
            session,
            "support.session_started",
            actor,
            reason=reason,
            elevated=elevated,
            expires_at=session.expires_at.isoformat(),
        )
    return session


def _audit_in_each_org(session: SupportSession, action: str, actor: Actor, **data) -> None:
    """``action`` in the audit log of every organisation of the impersonated user, naming the
    staff user and the session (so each tenant's own log shows the support access)."""
    for org_id in _org_ids(session.user_id):
        audit_record(
            organization_id=org_id,
            action=action,
            actor=actor,
            target_type="user",
            target_id=session.user_id,
            staff_email=session.staff.email,
            impersonator_id=session.staff_id,
            support_session_id=session.pk,
            **data,
        )


def end_support_session(*, actor: Actor, session: SupportSession, how: str) -> None:
    """Mark ``session`` ended (``how``: ``released`` or ``expired``) and write
    ``support.session_ended`` in each organisation of the impersonated user. Ending an ended
    session does nothing."""
    with transaction.atomic():
        locked = SupportSession.objects.select_for_update().get(pk=session.pk)
        if locked.ended_at is not None:
            return
        locked.ended_at = timezone.now()
        locked.ended_how = how
        locked.save(update_fields=["ended_at", "ended_how"])
        _audit_in_each_org(locked, "support.session_ended", actor, how=how)


def active_session(session_id) -> SupportSession | None:
    """The support session with ``session_id`` if it has not been ended, else None."""
    if session_id is None:
        return None
    return (
        SupportSession.objects.select_related("staff", "user")
        .filter(pk=session_id, ended_at__isnull=True)
        .first()
    )


def recent_sessions(limit: int = 50) -> list[SupportSession]:
    """The latest support sessions, newest first (operator read, all tenants)."""
    return list(SupportSession.objects.select_related("staff", "user")[:limit])


def on_hijack_ended(sender, *, hijacker, hijacked, request=None, **kwargs) -> None:
    """django-hijack's ``hijack_ended`` receiver: "End now" (hijack's release view) ends the open
    support session of this staff user and tenant user, recorded as ``released``. A session the
    time box already ended (the middleware sends the signal after ending it) is left as is."""
    for session in SupportSession.objects.select_related("staff").filter(
        staff_id=hijacker.pk, user_id=hijacked.pk, ended_at__isnull=True
    ):
        actor = (
            Actor.for_user(request, hijacker) if request is not None else Actor(user_id=hijacker.pk)
        )
        end_support_session(actor=actor, session=session, how="released")
