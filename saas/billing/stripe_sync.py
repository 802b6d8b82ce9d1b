"""The one place that talks to Stripe (the rest of billing never imports ``stripe``).

Configuration (``django.conf.settings``, read on every call so tests can override it):

- ``STRIPE_API_KEY``: the secret key; empty means Stripe is disabled (every call that would
  reach Stripe raises :class:`StripeDisabled`).
- ``STRIPE_WEBHOOK_SECRET``: the endpoint's signing secret (``whsec_…``).
- ``STRIPE_API_BASE``: the API's base address (default ``https://api.stripe.com``); the tests
  point it at a local fake server.
- ``TRAINYARD_PUBLIC_URL``: where Checkout and the customer portal send the customer back.

Every object we create carries an idempotency key derived from our own ids, and the Stripe id
is stored as soon as Stripe answers (a conditional update, one short transaction per call).
A rerun, or a retry after a timeout, therefore skips what is already stored and, for what is
not, gets Stripe's first answer back instead of a duplicate.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.urls import reverse

from saas.common.errors import Conflict, DomainError
from saas.tenancy.models import Membership

from .models import BillingAccount, Invoice, InvoiceLine, Plan
from .pricing import to_minor_units

log = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.stripe.com"

# Currencies Stripe counts in whole units (no minor unit); everything else has 2 decimals
# except the three-decimal ones. https://docs.stripe.com/currencies#zero-decimal


class StripeDisabled(DomainError):
    # 409, not 5xx: nothing is broken; this deployment bills with its own invoices.
    status = 409
    code = "stripe-disabled"
    title = "Payments are not configured"


class StripeCallFailed(DomainError):
    status = 502
    code = "stripe-error"
    title = "The payment provider refused or did not answer"


class InvalidSignature(DomainError):
    status = 400
    code = "invalid-signature"
    title = "The webhook signature is not valid"


def stripe_enabled() -> bool:
    """True when ``STRIPE_API_KEY`` is set (a non-empty string)."""
    return bool(getattr(settings, "STRIPE_API_KEY", ""))


def _client() -> stripe.StripeClient:
    if not stripe_enabled():
        raise StripeDisabled("STRIPE_API_KEY is not set; Stripe is disabled.")
    base = getattr(settings, "STRIPE_API_BASE", "") or DEFAULT_API_BASE
    # Network retries reuse our idempotency keys, so a retried POST never creates twice.
    return stripe.StripeClient(
        settings.STRIPE_API_KEY, base_addresses={"api": base}, max_network_retries=2
    )


def _call(what: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except stripe.StripeError as exc:
        log.warning("stripe %s failed: %s", what, exc)
        raise StripeCallFailed(
            f"Stripe could not {what}: {exc.user_message or exc.__class__.__name__}."
        ) from exc


def _key(key: str) -> dict:
    return {"idempotency_key": key}


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` (a Decimal in major units) as Stripe's integer minor units, rounded half-up.

    ``Decimal("12.345"), "usd"`` → ``1235``; ``Decimal("500"), "jpy"`` → ``500``.
    """
    return to_minor_units(amount, currency)


def _owner_email(organization_id: str) -> str | None:
    m = (
        Membership.objects.filter(organization_id=organization_id, role=Membership.Role.OWNER)
        .select_related("user")
        .order_by("created_at")
        .first()
    )
    return (m.user.email or None) if m else None


def customer_ensure(*, account: BillingAccount) -> str:
    """The Stripe customer id of ``account``'s organisation, creating the customer once.

    Idempotency key ``customer-{org id}``; the id is stored on ``account.stripe_customer_id``
    (and on the passed instance). Raises StripeDisabled (no API key) or StripeCallFailed.
    """
    if account.stripe_customer_id:
        return account.stripe_customer_id
    org = account.organization
    params: dict[str, Any] = {
        "name": org.name,
        "metadata": {"organization_id": org.pk, "organization_slug": org.slug},
    }
    email = _owner_email(org.pk)
    if email:
        params["email"] = email
    customer = _call(
        "create the customer",
        _client().v1.customers.create,
        params=params,
        options=_key(f"customer-{org.pk}"),
    )
    with transaction.atomic():
        BillingAccount.objects.for_tenant(org.pk).filter(
            pk=account.pk, stripe_customer_id=""
        ).update(stripe_customer_id=customer.id)
        stored = BillingAccount.objects.for_tenant(org.pk).get(pk=account.pk)
    account.stripe_customer_id = stored.stripe_customer_id
    return account.stripe_customer_id


def _is_paying(plan: Plan) -> bool:
    return plan.monthly_fee > 0 and not plan.contract_based


def plan_price_ensure(*, plan: Plan) -> str:
    """The Stripe price id of ``plan``'s monthly fee, creating Product and Price once.

    Uses ``plan.stripe_price_id`` when set; otherwise creates a Product (idempotency key
    ``product-{code}``) and a monthly recurring Price for ``monthly_fee`` in ``plan.currency``
    (key ``price-{code}-{fee}``) and stores its id on the Plan. Raises Conflict (free or
    contract plan), StripeDisabled or StripeCallFailed.
    """
    if plan.stripe_price_id:
        return plan.stripe_price_id
    if not _is_paying(plan):
        raise Conflict(f"Plan {plan.code!r} has no self-serve monthly fee to charge.")
    client = _client()
    product = _call(
        "create the product",
        client.v1.products.create,
        params={"name": f"Trainyard {plan.name}", "metadata": {"plan_code": plan.code}},
        options=_key(f"product-{plan.code}"),
    )
    price = _call(
        "create the price",
        client.v1.prices.create,
        params={
            "product": product.id,
            "currency": plan.currency.lower(),
            "unit_amount": minor_units(plan.monthly_fee, plan.currency),
            "recurring": {"interval": "month"},
            "metadata": {"plan_code": plan.code},
        },
        options=_key(f"price-{plan.code}-{plan.monthly_fee}"),
    )
    with transaction.atomic():
        Plan.objects.filter(pk=plan.pk, stripe_price_id="").update(stripe_price_id=price.id)
        plan.stripe_price_id = Plan.objects.get(pk=plan.pk).stripe_price_id
    return plan.stripe_price_id


def subscription_ensure(*, account: BillingAccount) -> str:
    """The Stripe subscription id of ``account``, creating it once for its (paying) plan.

    Ensures the customer and the plan's price first. Idempotency key
    ``subscription-{org id}-{plan code}``; the id is stored on
    ``account.stripe_subscription_id``. Raises Conflict (free or contract plan),
    StripeDisabled or StripeCallFailed.
    """
    if account.stripe_subscription_id:
        return account.stripe_subscription_id
    plan = account.plan
    price_id = plan_price_ensure(plan=plan)
    customer_id = customer_ensure(account=account)
    org_id = account.organization_id
    subscription = _call(
        "create the subscription",
        _client().v1.subscriptions.create,
        params={
            "customer": customer_id,
            "items": [{"price": price_id}],
            "metadata": {"organization_id": org_id, "plan_code": plan.code},
        },
        options=_key(f"subscription-{org_id}-{plan.code}"),
    )
    with transaction.atomic():
        BillingAccount.objects.for_tenant(org_id).filter(
            pk=account.pk, stripe_subscription_id=""
        ).update(stripe_subscription_id=subscription.id)
        stored = BillingAccount.objects.for_tenant(org_id).get(pk=account.pk)
    account.stripe_subscription_id = stored.stripe_subscription_id
    return account.stripe_subscription_id


def invoice_push(*, invoice: Invoice) -> str:
    """Mirror ``invoice`` in Stripe and finalise it there; returns the Stripe invoice id.

    Each InvoiceLine with a non-zero amount becomes one Stripe invoice item on the
    organisation's customer (amount in minor units of ``invoice.currency``, the line's
    description; idempotency key = the line's id; id stored on
    ``line.stripe_invoice_item_id``). Then one Stripe invoice collects the pending items
    (key ``invoice-{invoice id}``, id stored on ``invoice.stripe_invoice_id``) and is finalised
    if still a draft. Lines and invoices whose Stripe id is already stored are skipped, so
    running it twice (or after a timeout) leaves one item per line and one invoice.

    ``Invoice.tax`` is not a line and is not pushed. Raises StripeDisabled, StripeCallFailed,
    or Conflict when the organisation has no BillingAccount.
    """
    org_id = invoice.organization_id
    account = BillingAccount.objects.for_tenant(org_id).select_related("organization").first()
    if account is None:
        raise Conflict(f"Organisation {org_id} has no billing account.")
    customer_id = customer_ensure(account=account)
    client = _client()
    currency = invoice.currency.lower()

    if not invoice.stripe_invoice_id:
        lines = InvoiceLine.objects.for_tenant(org_id).filter(invoice_id=invoice.pk)
        for line in lines.order_by("position"):
            if line.stripe_invoice_item_id or not line.amount:
                continue
            if line.kind == InvoiceLine.Kind.SUBSCRIPTION and account.stripe_subscription_id:
                continue  # the Stripe subscription bills the plan fee itself
            item = _call(
                "create an invoice item",
                client.v1.invoice_items.create,
                params={
                    "customer": customer_id,
                    "amount": minor_units(line.amount, currency),
                    "currency": currency,
                    "description": line.description,
                    "metadata": {"invoice_id": invoice.pk, "invoice_line_id": line.pk},
                },
                options=_key(line.pk),
            )
            with transaction.atomic():
                InvoiceLine.objects.for_tenant(org_id).filter(
                    pk=line.pk, stripe_invoice_item_id=""
                ).update(stripe_invoice_item_id=item.id)

        created = _call(
            "create the invoice",
            client.v1.invoices.create,
            params={
                "customer": customer_id,
                "pending_invoice_items_behavior": "include",
                "description": f"Trainyard invoice {invoice.number}",
                "metadata": {"invoice_id": invoice.pk, "invoice_number": invoice.number},
            },
            options=_key(f"invoice-{invoice.pk}"),
        )
        with transaction.atomic():
            Invoice.objects.for_tenant(org_id).filter(pk=invoice.pk, stripe_invoice_id="").update(
                stripe_invoice_id=created.id
            )
            invoice.stripe_invoice_id = (
                Invoice.objects.for_tenant(org_id).get(pk=invoice.pk).stripe_invoice_id
            )

    remote = _call("read the invoice", client.v1.invoices.retrieve, invoice.stripe_invoice_id)
    if remote.status == "draft":
        _call(
            "finalise the invoice",
            client.v1.invoices.finalize_invoice,
            invoice.stripe_invoice_id,
            params={"auto_advance": True},
            options=_key(f"invoice-finalize-{invoice.pk}"),
        )
    return invoice.stripe_invoice_id


def _public_url(path: str) -> str:
    base = getattr(settings, "TRAINYARD_PUBLIC_URL", "http://localhost:8000").rstrip("/")
    return f"{base}{path}"


def _billing_page_url(query: str = "") -> str:
    """The dashboard's billing page as the customer's browser reaches it (Stripe sends them
    back there): ``TRAINYARD_PUBLIC_URL`` + the page's route, never a hard-coded path."""
    return _public_url(reverse("dashboard:billing") + (f"?{query}" if query else ""))


def checkout_session_create(*, account: BillingAccount, plan: Plan) -> str:
    """A Stripe Checkout URL where the organisation subscribes to ``plan`` (a paying plan).

    The session carries ``client_reference_id`` = org id and ``metadata`` ``organization_id``
    and ``plan_code``; the ``checkout.session.completed`` webhook switches the plan. Raises
    Conflict (free or contract plan), StripeDisabled or StripeCallFailed.
    """
    price_id = plan_price_ensure(plan=plan)
    customer_id = customer_ensure(account=account)
    metadata = {"organization_id": account.organization_id, "plan_code": plan.code}
    session = _call(
        "start a checkout",
        _client().v1.checkout.sessions.create,
        params={
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": account.organization_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": _billing_page_url("checkout=success"),
            "cancel_url": _billing_page_url("checkout=cancelled"),
        },
    )
    return session.url


def portal_session_create(*, account: BillingAccount) -> str:
    """A Stripe customer-portal URL for the organisation (payment methods, invoices, plan).

    Raises StripeDisabled or StripeCallFailed.
    """
    customer_id = customer_ensure(account=account)
    session = _call(
        "open the customer portal",
        _client().v1.billing_portal.sessions.create,
        params={"customer": customer_id, "return_url": _billing_page_url()},
    )
    return session.url


def webhook_event_construct(*, payload: bytes, signature: str | None) -> dict:
    """Verify a webhook delivery and return the event as a plain dict.

    ``payload`` must be the raw request body, byte for byte; ``signature`` the
    ``Stripe-Signature`` header. Uses Stripe's default tolerance (300 s) for the timestamp.
    The dict has at least ``id`` (str), ``type`` (str), ``created`` (int, seconds) and
    ``data.object`` (dict). Raises InvalidSignature for a missing, forged or stale
    signature, a missing webhook secret, or a body that is not a Stripe event.
    """
    secret = getattr(settings, "STRIPE_WEBHOOK_SECRET", "")
    if not secret:
        raise InvalidSignature("No webhook secret is configured; the event cannot be verified.")
    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret)
    except stripe.SignatureVerificationError as exc:
        raise InvalidSignature(
            "The Stripe-Signature header does not match the body or is too old."
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidSignature("The body is not a Stripe event.") from exc
    data = event.to_dict(for_json=True)
    obj = (data.get("data") or {}).get("object") if isinstance(data.get("data"), dict) else None
    if not (
        isinstance(data.get("id"), str)
        and isinstance(data.get("type"), str)
        and isinstance(data.get("created"), int)
        and isinstance(obj, dict)
    ):
        raise InvalidSignature("The body is not a Stripe event (id, type, created, data.object).")
    return data
