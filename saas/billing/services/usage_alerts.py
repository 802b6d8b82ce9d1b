"""Usage alerts: email owners and billing members at 80 % and 100 % of included units."""

from __future__ import annotations

import datetime

from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from saas.common.actor import Actor
from saas.tenancy.models import Membership, Organization

from ..models import BillingAccount
from ..selectors import usage_levels
from .accounts import billing_account_ensure

WARNING_THRESHOLDS = (80, 100)


def usage_warnings_send(
    *, organization: Organization, actor: Actor, on: datetime.date | None = None
) -> list[str]:
    """Email owners and billing members once per meter and month when usage of included units
    (or a free plan's quota) crosses 80 % and 100 %. Returns the warnings sent
    (``"2026-05:predictions:80"``). Run hourly by Celery beat; the dashboard shows the same
    levels through ``GET /v1/billing``. ``actor`` (``Actor.system()`` from beat) is who opens
    the billing account should it be missing."""
    on = on or timezone.now().date()
    sent = []
    with transaction.atomic():
        account = (
            BillingAccount.objects.for_tenant(organization)
            .select_for_update()
            .get(pk=billing_account_ensure(organization=organization, actor=actor).pk)
        )
        warned = dict(account.warned or {})
        for level in usage_levels(organization=organization, on=on):
            for threshold in WARNING_THRESHOLDS:
                key = f"{on:%Y-%m}:{level['meter']}:{threshold}"
                if level["percent"] >= threshold and key not in warned:
                    warned[key] = timezone.now().isoformat()
                    sent.append(key)
        if sent:
            BillingAccount.objects.for_tenant(organization).filter(pk=account.pk).update(
                warned=warned
            )
            to = list(
                Membership.objects.filter(
                    organization=organization, role__in=["owner", "billing"]
                ).values_list("user__email", flat=True)
            )
            lines = "\n".join(
                f"- {k.split(':')[1]}: {k.split(':')[2]} % of the month's included units"
                for k in sent
            )
            body = f"{organization.name} has used:\n{lines}\n\n" + (
                "Requests over the free plan's quotas are refused until the month resets; upgrade to continue."
                if account.plan.hard_limits
                else "Usage beyond the included units is billed at overage prices."
            )
            transaction.on_commit(
                lambda: send_mail(f"Trainyard usage alert for {organization.name}", body, None, to)
            )
    return sent


def usage_warnings_send_all(*, actor: Actor) -> int:
    """:func:`usage_warnings_send` for every organisation, as ``actor``; returns how many
    warnings went out."""
    return sum(
        len(usage_warnings_send(organization=org, actor=actor))
        for org in Organization.objects.all()
    )
