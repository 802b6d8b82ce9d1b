"""Billing accounts: created with the organisation, plan changes, spend cap, Stripe Checkout.

The account is ensured by :func:`billing_account_ensure`, called by the ``post_save`` receiver
on ``Organization`` (``saas.billing.receivers``) inside the transaction that creates the
organisation, so reads (``saas.billing.selectors.billing_account_get``) never have to create it.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import IntegrityError, transaction

from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .. import stripe_sync
from ..models import BillingAccount, Plan, PlanPrice, RateCard
from ..seed import seed
from ..selectors import billing_account_get

log = logging.getLogger(__name__)


def _plan_for(code: str) -> Plan:
    """The plan with ``code``; restores the seeded plans if the table was emptied (a test
    database flush) rather than fail.

    Raises ValidationFailed (naming the known codes) if no plan has ``code``."""
    plan = Plan.objects.filter(code=code).first()
    if plan is None and not Plan.objects.exists():
        seed(Plan, PlanPrice, RateCard)
        plan = Plan.objects.filter(code=code).first()
    if plan is None:
        known = ", ".join(Plan.objects.order_by("pk").values_list("code", flat=True))
        raise ValidationFailed(
            "Unknown plan.",
            errors=[{"field": "plan", "message": f"no plan {code!r}; one of {known}"}],
        )
    return plan


def billing_account_ensure(
    *, organization: Organization, actor: Actor, plan_code: str = "free"
) -> BillingAccount:
    """The organisation's billing account, created on the plan with code ``plan_code`` if
    missing (an existing account is returned as it is: plans change through
    :func:`billing_plan_change`). Idempotent; safe under concurrency (the unique constraint
    decides, inside a savepoint). Creating it is audited as ``billing_account.created`` for
    ``actor`` (the system when billing's receiver opens it with the organisation), since a new
    account on a paying plan gets its Stripe customer and subscription after the surrounding
    transaction commits (best effort, see :func:`_subscribe_in_stripe`).

    Raises ValidationFailed if the account is missing and no plan has code ``plan_code``."""
    scoped = BillingAccount.objects.for_tenant(organization)
    account = scoped.select_related("plan").first()
    if account is not None:
        return account
    plan = _plan_for(plan_code)
    try:
        with transaction.atomic():
            account = scoped.create(organization=organization, plan=plan)
            audit_record(
                organization_id=organization.pk,
                action="billing_account.created",
                actor=actor,
                target_type="billing_account",
                target_id=account.pk,
                plan=plan.code,
            )
    except IntegrityError:
        return scoped.select_related("plan").get()
    if plan.monthly_fee > 0:
        org_id = organization.pk
        transaction.on_commit(lambda: _subscribe_in_stripe(org_id))
    return account


def _subscribe_in_stripe(organization_id: str) -> None:
    """Create the Stripe customer and subscription of a paying organisation (best effort: a
    failure is logged and retried at period close, which calls ``customer_ensure`` again)."""
    if not stripe_sync.stripe_enabled():
        return
    account = (
        BillingAccount.objects.for_tenant(organization_id)
        .select_related("plan", "organization")
        .get()
    )
    try:
        stripe_sync.subscription_ensure(account=account)
    except Exception:
        log.exception("creating the Stripe subscription of %s failed", organization_id)


@transaction.atomic
def billing_account_update(
    *, organization: Organization, monthly_spend_cap: Decimal | None, actor: Actor
) -> BillingAccount:
    """Set (or clear, with None) the organisation's monthly spend cap (a Decimal in the plan's
    currency); audited as ``billing.spend_cap_changed``. Returns the updated account."""
    account = billing_account_ensure(organization=organization, actor=actor)
    BillingAccount.objects.for_tenant(organization).filter(pk=account.pk).update(
        monthly_spend_cap=monthly_spend_cap
    )
    audit_record(
        organization_id=organization.pk,
        action="billing.spend_cap_changed",
        actor=actor,
        target_type="billing_account",
        target_id=account.pk,
        old=str(account.monthly_spend_cap),
        new=str(monthly_spend_cap),
    )
    return BillingAccount.objects.for_tenant(organization).get(pk=account.pk)


@transaction.atomic
def billing_plan_change(
    *, organization: Organization, plan_code: str, actor: Actor, reason: str = ""
) -> BillingAccount:
    """Move the organisation to the plan ``plan_code`` (an operator's change, e.g. from the
    admin): its account's plan changes, audited as ``billing_account.plan_changed``. That is
    the one place that says which plan an organisation is on, so its job caps follow from the
    next submission and its rate limits within 1 s (``TRAINYARD_REQUEST_CACHE_SECONDS``). No Stripe call: paid self-serve upgrades go through
    Checkout (:func:`checkout_url`). A change to the current plan records nothing.
    ``reason`` (an operator's, from the console) is kept in the audit event.

    Raises ValidationFailed for an unknown plan code."""
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise ValidationFailed(
            "Unknown plan.", errors=[{"field": "plan", "message": f"no plan {plan_code!r}"}]
        )
    Organization.objects.select_for_update().get(pk=organization.pk)
    account = billing_account_ensure(organization=organization, actor=actor)
    if account.plan_id != plan.pk:
        old = account.plan.code
        BillingAccount.objects.for_tenant(organization).filter(pk=account.pk).update(plan=plan)
        audit_record(
            organization_id=organization.pk,
            action="billing_account.plan_changed",
            actor=actor,
            target_type="billing_account",
            target_id=account.pk,
            old=old,
            new=plan.code,
            **({"reason": reason} if reason else {}),
        )
    return billing_account_get(organization=organization)


def checkout_url(*, organization: Organization, plan_code: str, actor: Actor) -> str:
    """A Stripe Checkout URL to upgrade to a paid self-serve plan; audited as
    ``billing.checkout_started`` (the plan changes only when Stripe's webhook confirms).

    Raises ValidationFailed for an unknown, free or contract-based plan, StripeDisabled (409)
    when Stripe is not configured, and StripeCallFailed (502)."""
    # A code no plan can have (NUL, or longer than the column) is unknown without asking the
    # database, which would refuse the NUL with an error (a 500) instead of finding nothing.
    max_length = Plan._meta.get_field("code").max_length or 0
    plan = None
    if "\x00" not in plan_code and len(plan_code) <= max_length:
        plan = Plan.objects.filter(code=plan_code, contract_based=False, monthly_fee__gt=0).first()
    if plan is None:
        raise ValidationFailed(
            "Unknown plan.",
            errors=[{"field": "plan", "message": "a paid self-serve plan, e.g. pro"}],
        )
    account = billing_account_ensure(organization=organization, actor=actor)
    url = stripe_sync.checkout_session_create(account=account, plan=plan)
    audit_record(
        organization_id=organization.pk,
        action="billing.checkout_started",
        actor=actor,
        target_type="billing_account",
        target_id=account.pk,
        plan=plan.code,
    )
    return url
