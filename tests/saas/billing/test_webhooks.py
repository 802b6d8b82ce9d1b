"""Stripe webhooks: signature checks, each handled event, duplicates, concurrency, ordering,
and the past-due grace period."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
import stripe
from django.db import connection
from django.test import Client
from django.utils import timezone

from saas.billing.models import BillingAccount, Invoice, Plan, StripeEvent
from saas.billing.selectors import plan_limits_get
from saas.billing.services.grace import billing_enforce_grace
from saas.billing.services.stripe_events import stripe_event_process
from saas.common.actor import Actor
from saas.tenancy.models import AuditEvent, Organization
from saas.tenancy.services import organization_create

SECRET = "whsec_test_secret"
URL = "/stripe/webhook"


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_KEY = ""
    settings.TRAINYARD_PAST_DUE_GRACE_DAYS = 7


def make_account(slug: str = "acme", plan: str = "pro", **fields) -> BillingAccount:
    org = organization_create(
        slug=slug, name=slug.title(), owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    values = {"stripe_customer_id": f"cus_{slug}", "stripe_subscription_id": f"sub_{slug}"}
    values.update(fields)
    # The account exists from the organisation's creation; give it the plan and Stripe ids.
    BillingAccount.objects.for_tenant(org).update(plan=Plan.objects.get(code=plan), **values)
    return BillingAccount.objects.for_tenant(org).get()


@pytest.fixture
def account(db) -> BillingAccount:
    return make_account()


def reload(account: BillingAccount) -> BillingAccount:
    return BillingAccount.objects.for_tenant(account.organization_id).get(pk=account.pk)


def org_status(account: BillingAccount) -> str:
    return Organization.objects.get(pk=account.organization_id).status


def audits(account: BillingAccount, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.for_tenant(account.organization_id).filter(action=action))


def event(type_: str, obj: dict, *, created: int | None = None, id_: str | None = None) -> dict:
    return {
        "id": id_ or f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "type": type_,
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def sign(payload: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` exactly as Stripe builds it: HMAC-SHA256 over ``"{t}.{body}"``."""
    t = timestamp if timestamp is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def deliver(evt: dict, *, client: Client | None = None, **sign_kw):
    payload = json.dumps(evt, separators=(",", ":")).encode()
    return (client or Client()).post(
        URL,
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(payload, **sign_kw),
    )


def subscription(
    account: BillingAccount, status: str, *, price: str = "", sub_id: str = ""
) -> dict:
    items = {"object": "list", "data": [{"id": "si_1", "price": {"id": price}}] if price else []}
    return {
        "id": sub_id or account.stripe_subscription_id,
        "object": "subscription",
        "customer": account.stripe_customer_id,
        "status": status,
        "items": items,
        "metadata": {},
    }


# --- signature and input checks -----------------------------------------------------------


def test_our_signature_matches_stripes_own_helper():
    payload = b'{"id":"evt_1","object":"event"}'
    expected = stripe.WebhookSignature.generate_signature_header(
        payload.decode(), SECRET, timestamp=1_700_000_000
    )
    assert sign(payload, timestamp=1_700_000_000) == expected


def _assert_refused(resp, account: BillingAccount) -> None:
    assert resp.status_code == 400
    assert resp["Content-Type"] == "application/problem+json"
    body = resp.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == 400
    assert StripeEvent.objects.count() == 0
    fresh = reload(account)
    assert fresh.status == BillingAccount.Status.ACTIVE
    assert fresh.past_due_since is None


def failed(account: BillingAccount, **kw) -> dict:
    return event(
        "invoice.payment_failed", {"id": "in_1", "customer": account.stripe_customer_id}, **kw
    )


def test_forged_signature_is_refused_without_effect(account):
    resp = deliver(failed(account), secret="whsec_someone_else")
    _assert_refused(resp, account)
    assert resp.json()["type"].endswith("/invalid-signature")


def test_stale_timestamp_is_refused_without_effect(account):
    resp = deliver(failed(account), timestamp=int(time.time()) - 301)
    _assert_refused(resp, account)


def test_body_reserialised_after_signing_is_refused(account):
    evt = failed(account)
    signed_body = json.dumps(evt, separators=(",", ":")).encode()
    sent_body = json.dumps(evt, indent=2).encode()  # same JSON, different bytes
    resp = Client().post(
        URL,
        data=sent_body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign(signed_body),
    )
    _assert_refused(resp, account)


@pytest.mark.parametrize(
    "body, header",
    [
        (b"not json at all", "sign"),
        (b"\xff\xfe\x00garbage", "sign"),
        (b'{"object": "event", "id": "evt_x"}', "sign"),  # signed but no type/created/data
        (b'{"object":"event"}', ""),  # no header
        (b'{"object":"event"}', "t=abc,v1=zzz"),
        (b'{"object":"event"}', "garbage"),
    ],
)
def test_malformed_input_is_a_400_never_a_500(account, body, header):
    sig = sign(body) if header == "sign" else header
    kw = {"HTTP_STRIPE_SIGNATURE": sig} if sig else {}
    resp = Client().post(URL, data=body, content_type="application/json", **kw)
    _assert_refused(resp, account)


def test_missing_webhook_secret_refuses_everything(account, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    _assert_refused(deliver(failed(account)), account)


def test_get_is_not_allowed(db):
    resp = Client().get(URL)
    assert resp.status_code == 405
    assert resp["Allow"] == "POST"


# --- each handled event -------------------------------------------------------------------


def test_checkout_completed_switches_plan_and_stores_ids(db):
    acct = make_account("initech", plan="free", stripe_customer_id="", stripe_subscription_id="")
    obj = {
        "id": "cs_test_1",
        "object": "checkout.session",
        "client_reference_id": acct.organization_id,
        "customer": "cus_new",
        "subscription": "sub_new",
        "metadata": {"organization_id": acct.organization_id, "plan_code": "pro"},
    }
    resp = deliver(event("checkout.session.completed", obj))
    assert resp.status_code == 200
    assert resp.json() == {"received": True}
    fresh = reload(acct)
    assert fresh.plan.code == "pro"
    assert (fresh.stripe_customer_id, fresh.stripe_subscription_id) == ("cus_new", "sub_new")
    assert plan_limits_get(organization=acct.organization_id).plan == "pro"
    [audit] = audits(acct, "billing_account.plan_changed")
    assert audit.data["old"] == "free" and audit.data["new"] == "pro"


@pytest.mark.parametrize(
    "type_, stripe_status, expected",
    [
        ("customer.subscription.created", "active", "active"),
        ("customer.subscription.updated", "trialing", "active"),
        ("customer.subscription.updated", "past_due", "past_due"),
        ("customer.subscription.updated", "unpaid", "past_due"),
        ("customer.subscription.updated", "canceled", "canceled"),
        ("customer.subscription.deleted", "canceled", "canceled"),
    ],
)
def test_subscription_status_mapping(account, type_, stripe_status, expected):
    resp = deliver(event(type_, subscription(account, stripe_status), created=1_800_000_000))
    assert resp.status_code == 200
    fresh = reload(account)
    assert fresh.status == expected
    assert (fresh.past_due_since is not None) == (expected == "past_due")
    assert fresh.stripe_updated_at == 1_800_000_000
    assert len(audits(account, "billing_account.status_changed")) == (expected != "active")


def test_subscription_updated_with_another_price_switches_plan(account):
    Plan.objects.filter(code="enterprise").update(stripe_price_id="price_ent")
    deliver(
        event("customer.subscription.updated", subscription(account, "active", price="price_ent"))
    )
    assert reload(account).plan.code == "enterprise"
    assert len(audits(account, "billing_account.plan_changed")) == 1


def test_deletion_of_a_replaced_subscription_is_ignored(account):
    sub = subscription(account, "canceled", sub_id="sub_old_one")
    assert deliver(event("customer.subscription.deleted", sub)).status_code == 200
    assert reload(account).status == "active"


def test_invoice_paid_marks_our_invoice_paid_and_clears_past_due(account):
    org = account.organization
    inv = Invoice.objects.for_tenant(org).create(
        organization=org,
        number="TY-2026-000001",
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 2, 1),
        currency="usd",
        subtotal=Decimal("49.00"),
        total=Decimal("49.00"),
        due_on=dt.date(2026, 2, 15),
        stripe_invoice_id="in_paid_1",
    )
    BillingAccount.objects.for_tenant(org).filter(pk=account.pk).update(
        status="past_due", past_due_since=timezone.now()
    )
    obj = {
        "id": "in_paid_1",
        "object": "invoice",
        "customer": account.stripe_customer_id,
        "status": "paid",
        "status_transitions": {"paid_at": 1_800_000_000},
    }
    assert deliver(event("invoice.paid", obj)).status_code == 200
    inv = Invoice.objects.for_tenant(org).get(pk=inv.pk)
    assert inv.status == "paid"
    assert inv.paid_at == dt.datetime.fromtimestamp(1_800_000_000, tz=dt.UTC)
    fresh = reload(account)
    assert fresh.status == "active" and fresh.past_due_since is None
    assert len(audits(account, "invoice.paid")) == 1


def test_unknown_event_type_is_recorded_and_ignored(account):
    assert deliver(event("customer.updated", {"id": "cus_acme"})).status_code == 200
    assert StripeEvent.objects.get().type == "customer.updated"
    assert reload(account).status == "active"


# --- duplicates, ordering, grace ----------------------------------------------------------


def test_same_event_twice_is_applied_once(account):
    evt = failed(account)
    assert deliver(evt).status_code == 200
    first_since = reload(account).past_due_since
    assert deliver(evt).status_code == 200
    assert StripeEvent.objects.filter(event_id=evt["id"]).count() == 1
    assert len(audits(account, "billing_account.status_changed")) == 1
    assert reload(account).past_due_since == first_since
    assert stripe_event_process(event=evt) is False


def test_out_of_order_subscription_update_is_ignored(account):
    newer = event("customer.subscription.updated", subscription(account, "active"), created=2000)
    older = event("customer.subscription.updated", subscription(account, "past_due"), created=1000)
    deliver(newer)
    assert deliver(older).status_code == 200
    fresh = reload(account)
    assert fresh.status == "active" and fresh.past_due_since is None
    assert fresh.stripe_updated_at == 2000
    assert StripeEvent.objects.count() == 2  # recorded, not applied


def test_payment_failed_then_grace_suspends_then_payment_lifts(account):
    assert deliver(failed(account)).status_code == 200
    fresh = reload(account)
    assert fresh.status == "past_due" and fresh.past_due_since is not None
    assert org_status(account) == "active"

    assert billing_enforce_grace(actor=Actor.system()) == []  # still inside the grace period
    assert org_status(account) == "active"

    BillingAccount.objects.for_tenant(account.organization_id).filter(pk=account.pk).update(
        past_due_since=timezone.now() - dt.timedelta(days=7, minutes=1)
    )
    assert billing_enforce_grace(actor=Actor.system()) == [account.organization_id]
    assert org_status(account) == "suspended"
    assert billing_enforce_grace(actor=Actor.system()) == []  # not suspended twice
    assert len(audits(account, "organization.suspended")) == 1

    paid = {"id": "in_2", "object": "invoice", "customer": account.stripe_customer_id}
    assert deliver(event("invoice.paid", paid, created=int(time.time()) + 1)).status_code == 200
    assert org_status(account) == "active"
    assert reload(account).status == "active"
    assert len(audits(account, "organization.reactivated")) == 1


def test_grace_period_setting_is_respected(account, settings):
    settings.TRAINYARD_PAST_DUE_GRACE_DAYS = 30
    BillingAccount.objects.for_tenant(account.organization_id).filter(pk=account.pk).update(
        status="past_due", past_due_since=timezone.now() - dt.timedelta(days=10)
    )
    assert billing_enforce_grace(actor=Actor.system()) == []
    settings.TRAINYARD_PAST_DUE_GRACE_DAYS = 7
    assert billing_enforce_grace(actor=Actor.system()) == [account.organization_id]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_deliveries_apply_once():
    acct = make_account("hooli")
    evt = failed(acct)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker():
        try:
            start.wait(timeout=10)
            results.append(deliver(evt).status_code)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert sorted(results) == [200, 200]
    assert StripeEvent.objects.filter(event_id=evt["id"]).count() == 1
    assert len(audits(acct, "billing_account.status_changed")) == 1
    assert reload(acct).status == "past_due"


def test_paid_invoice_lifts_suspension_even_after_the_subscription_turned_active(account):
    """Stripe often sends subscription.updated (active) in the same second as invoice.paid."""
    assert deliver(failed(account)).status_code == 200
    BillingAccount.objects.for_tenant(account.organization_id).filter(pk=account.pk).update(
        past_due_since=timezone.now() - dt.timedelta(days=8)
    )
    assert billing_enforce_grace(actor=Actor.system()) == [account.organization_id]
    now = int(time.time()) + 5
    active = event("customer.subscription.updated", subscription(account, "active"), created=now)
    assert deliver(active).status_code == 200
    assert reload(account).status == "active" and org_status(account) == "suspended"
    paid = {"id": "in_3", "object": "invoice", "customer": account.stripe_customer_id}
    assert deliver(event("invoice.paid", paid, created=now)).status_code == 200
    assert org_status(account) == "active"
