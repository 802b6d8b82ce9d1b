"""Dunning: suspend organisations past due beyond the grace period (Celery beat, daily)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from saas.common.actor import Actor
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from ..models import BillingAccount

Status = BillingAccount.Status


@transaction.atomic
def billing_enforce_grace(*, actor: Actor, now: datetime | None = None) -> list[str]:
    """Suspend organisations whose account has been past due longer than the grace period.

    The grace period is ``TRAINYARD_PAST_DUE_GRACE_DAYS`` days (default 7), counted from
    ``BillingAccount.past_due_since``. Returns the ids of the organisations suspended by this
    call (already suspended ones are not repeated), each audited as ``organization.suspended``
    for ``actor`` (``Actor.system()`` from Celery beat). Raises nothing of its own.
    """
    now = now or timezone.now()
    grace = timedelta(days=getattr(settings, "TRAINYARD_PAST_DUE_GRACE_DAYS", 7))
    overdue = (
        BillingAccount.objects.unscoped_all_tenants()
        .filter(status=Status.PAST_DUE, past_due_since__lte=now - grace)
        .values_list("organization_id", flat=True)
    )
    orgs = list(
        Organization.objects.select_for_update()
        .filter(pk__in=list(overdue), status=Organization.Status.ACTIVE)
        .order_by("pk")
    )
    for org in orgs:
        org.status = Organization.Status.SUSPENDED
        org.save(update_fields=["status"])
        audit_record(
            organization_id=org.pk,
            action="organization.suspended",
            actor=actor,
            target_type="organization",
            target_id=org.pk,
            reason="past due beyond the grace period",
            grace_days=grace.days,
        )
    return [org.pk for org in orgs]
