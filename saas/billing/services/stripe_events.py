"""Stripe webhook events: verify, store each event once, and apply it to billing state.

Stripe delivers at least once, in any order, possibly concurrently. So:

- an event is inserted into ``StripeEvent`` under its unique ``event_id`` first, inside a
  savepoint; a duplicate (even a concurrent one: the second insert waits on the unique index
  until the first transaction commits) hits the constraint and is a no-op;
- changes to a BillingAccount's status or plan carry Stripe's ``event.created``; an event older
  than ``BillingAccount.stripe_updated_at`` (the last change applied) is ignored.

Only :mod:`saas.billing.stripe_sync` talks to Stripe; this module works on verified event dicts.
The HTTP endpoint is ``saas.api.stripe_webhook``; it calls :func:`stripe_webhook_receive`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from saas.common.errors import DomainError
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from ..models import BillingAccount, Invoice, Plan, StripeEvent
from ..stripe_sync import webhook_event_construct

log = logging.getLogger(__name__)

Status = BillingAccount.Status

# Stripe subscription status -> ours. Statuses not listed (incomplete, paused) change nothing.
SUBSCRIPTION_STATUS = {
    "active": Status.ACTIVE,
    "trialing": Status.ACTIVE,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "canceled": Status.CANCELED,
    "incomplete_expired": Status.CANCELED,
}


class InvalidStripeEvent(DomainError):
    status = 400
    code = "invalid-event"
    title = "The Stripe event is malformed"


# --- helpers ------------------------------------------------------------------------------


def _s(obj: dict, key: str) -> str:
    """``obj[key]`` when it is a non-empty string (Stripe sometimes expands ids into objects)."""
    value = obj.get(key)
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _account_locked(*, customer_id: str = "", organization_id: str = "") -> BillingAccount | None:
    # System code: a webhook names no tenant, Stripe's customer id does.
    qs = (
        BillingAccount.objects.unscoped_all_tenants()
        .select_for_update(of=("self",))
        .select_related("plan")
    )
    account = qs.filter(stripe_customer_id=customer_id).first() if customer_id else None
    if account is None and organization_id:
        account = qs.filter(organization_id=organization_id).first()
    return account


def _is_stale(account: BillingAccount, created: int) -> bool:
    return account.stripe_updated_at is not None and created < account.stripe_updated_at


def _set_status(account: BillingAccount, new: str, *, event: dict) -> None:
    """Apply ``new`` to ``account`` (not saved) and audit it if it changed."""
    old = account.status
    if new == Status.PAST_DUE:
        account.past_due_since = account.past_due_since or timezone.now()
    else:
        account.past_due_since = None
    if new != old:
        account.status = new
        audit_record(
            organization_id=account.organization_id,
            action="billing_account.status_changed",
            actor=None,
            target_type="billing_account",
            target_id=str(account.pk),
            old=old,
            new=new,
            stripe_event=event["id"],
        )


def _set_plan(account: BillingAccount, plan: Plan, *, event: dict) -> None:
    """Switch ``account`` (not saved) to ``plan``, audited (the account's plan is the
    organisation's: there is no other copy to keep in step)."""
    if account.plan_id == plan.pk:
        return
    old = account.plan.code
    account.plan = plan
    audit_record(
        organization_id=account.organization_id,
        action="billing_account.plan_changed",
        actor=None,
        target_type="billing_account",
        target_id=str(account.pk),
        old=old,
        new=plan.code,
        stripe_event=event["id"],
    )


def _lift_suspension(organization_id: str, *, event: dict) -> None:
    lifted = Organization.objects.filter(
        pk=organization_id, status=Organization.Status.SUSPENDED
    ).update(status=Organization.Status.ACTIVE)
    if lifted:
        audit_record(
            organization_id=organization_id,
            action="organization.reactivated",
            actor=None,
            target_type="organization",
            target_id=organization_id,
            reason="invoice paid",
            stripe_event=event["id"],
        )


def _price_id(subscription: dict) -> str:
    items = (subscription.get("items") or {}).get("data") or []
    if not items or not isinstance(items[0], dict):
        return ""
    return _s(items[0], "price") or _s(items[0], "plan")


# --- handlers (inside stripe_event_process's transaction) ---------------------------------


def _checkout_completed(obj: dict, event: dict) -> None:
    metadata = obj.get("metadata") or {}
    org_id = metadata.get("organization_id") or _s(obj, "client_reference_id")
    plan = Plan.objects.filter(code=metadata.get("plan_code") or "").first()
    if not org_id or plan is None:
        log.warning("checkout %s without organisation or known plan; ignored", _s(obj, "id"))
        return
    org = Organization.objects.select_for_update().filter(pk=org_id).first()
    if org is None:
        log.warning("checkout %s for unknown organisation %s; ignored", _s(obj, "id"), org_id)
        return
    account = _account_locked(organization_id=org.pk)
    if account is None:
        account = BillingAccount.objects.for_tenant(org).create(organization=org, plan=plan)
    else:
        _set_plan(account, plan, event=event)
    account.stripe_customer_id = _s(obj, "customer") or account.stripe_customer_id
    account.stripe_subscription_id = _s(obj, "subscription") or account.stripe_subscription_id
    account.save()


def _subscription_changed(obj: dict, event: dict) -> None:
    metadata = obj.get("metadata") or {}
    account = _account_locked(
        customer_id=_s(obj, "customer"), organization_id=metadata.get("organization_id") or ""
    )
    if account is None:
        log.info("subscription event %s for an unknown customer; ignored", event["id"])
        return
    if _is_stale(account, event["created"]):
        log.info("subscription event %s is older than the last change; ignored", event["id"])
        return
    sub_id = _s(obj, "id")
    deleted = event["type"] == "customer.subscription.deleted"
    if deleted and account.stripe_subscription_id and sub_id != account.stripe_subscription_id:
        log.info("deletion of a replaced subscription %s; ignored", sub_id)
        return
    if not deleted:
        account.stripe_subscription_id = sub_id or account.stripe_subscription_id
        price_id = _price_id(obj)
        plan = Plan.objects.filter(stripe_price_id=price_id).first() if price_id else None
        if plan is not None:
            _set_plan(account, plan, event=event)
    new = Status.CANCELED if deleted else SUBSCRIPTION_STATUS.get(obj.get("status") or "")
    if new is not None:
        _set_status(account, new, event=event)
    account.stripe_updated_at = event["created"]
    account.save()


def _invoice_paid(obj: dict, event: dict) -> None:
    ours = (
        Invoice.objects.unscoped_all_tenants()
        .select_for_update()
        .filter(stripe_invoice_id=_s(obj, "id"))
        .first()
        if _s(obj, "id")
        else None
    )
    if ours is not None and ours.status != Invoice.Status.PAID:
        paid_at = (obj.get("status_transitions") or {}).get("paid_at")
        ours.status = Invoice.Status.PAID
        ours.paid_at = (
            datetime.fromtimestamp(paid_at, tz=UTC) if isinstance(paid_at, int) else timezone.now()
        )
        ours.save(update_fields=["status", "paid_at"])
        audit_record(
            organization_id=ours.organization_id,
            action="invoice.paid",
            actor=None,
            target_type="invoice",
            target_id=ours.pk,
            stripe_event=event["id"],
        )
    account = _account_locked(
        customer_id=_s(obj, "customer"),
        organization_id=ours.organization_id if ours is not None else "",
    )
    if account is None:
        return
    # Paid is paid: lift a billing suspension even if a subscription event already cleared
    # past_due (Stripe often sends both within the same second).
    _lift_suspension(account.organization_id, event=event)
    if _is_stale(account, event["created"]):
        return
    if account.status == Status.PAST_DUE or account.past_due_since is not None:
        _set_status(account, Status.ACTIVE, event=event)
    account.stripe_updated_at = event["created"]
    account.save()


def _invoice_payment_failed(obj: dict, event: dict) -> None:
    account = _account_locked(customer_id=_s(obj, "customer"))
    if account is None:
        log.info("payment failure %s for an unknown customer; ignored", event["id"])
        return
    if _is_stale(account, event["created"]):
        return
    _set_status(account, Status.PAST_DUE, event=event)
    account.stripe_updated_at = event["created"]
    account.save()


HANDLERS = {
    "checkout.session.completed": _checkout_completed,
    "customer.subscription.created": _subscription_changed,
    "customer.subscription.updated": _subscription_changed,
    "customer.subscription.deleted": _subscription_changed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
}


# --- services -----------------------------------------------------------------------------


@transaction.atomic
def stripe_event_process(*, event: dict) -> bool:
    """Record and apply one verified Stripe event (``webhook_event_construct``'s dict).

    ``event`` has ``id``, ``type``, ``created`` (int seconds) and ``data.object``. Returns
    False when the event was already recorded (duplicate or concurrent delivery: nothing is
    applied), True otherwise; types without a handler are recorded and otherwise ignored.
    Raises InvalidStripeEvent when the event's object lacks what its handler needs (nothing
    is recorded then).
    """
    try:
        with transaction.atomic():
            row = StripeEvent.objects.create(
                event_id=event["id"],
                type=event["type"],
                created=event["created"],
                payload=event,
            )
    except IntegrityError:
        return False
    handler = HANDLERS.get(event["type"])
    if handler is not None:
        obj = (event.get("data") or {}).get("object")
        if not isinstance(obj, dict):
            raise InvalidStripeEvent(f"Event {event['id']} has no data.object.")
        try:
            handler(obj, event)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidStripeEvent(
                f"Event {event['id']} ({event['type']}) could not be applied: {exc!r}."
            ) from exc
    StripeEvent.objects.filter(pk=row.pk).update(processed_at=timezone.now())
    return True


def stripe_webhook_receive(*, payload: bytes, signature: str | None) -> bool:
    """Verify a webhook delivery (the raw body and its ``Stripe-Signature`` header) and apply
    it: :func:`stripe_event_process`'s result (False for a duplicate).

    Raises InvalidSignature (bad signature or stale timestamp) or InvalidStripeEvent
    (malformed event); nothing is recorded then."""
    event = webhook_event_construct(payload=payload, signature=signature)
    return stripe_event_process(event=event)
