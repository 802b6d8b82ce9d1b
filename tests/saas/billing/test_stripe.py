"""Stripe calls through the real SDK against localstripe, a stateful fake Stripe server.

localstripe (PyPI) lacks a few things the modern API has; the launcher below adds them in
the fake, as thin translations onto what it does model:

- ``Idempotency-Key``: the first response to a key is replayed for later requests with the
  same key, as Stripe does (localstripe ignores the header);
- ``POST /v1/prices``: stored as a localstripe Plan (Stripe treats plans as prices);
  subscription ``items[][price]`` is read as ``items[][plan]``;
- ``POST /v1/invoices`` for a customer without a subscription (a one-off invoice that
  collects the pending items, as ``pending_invoice_items_behavior=include`` does), and
  ``POST /v1/invoices/{id}/finalize``.

Checkout and customer-portal sessions are not modelled by localstripe and are not tested
here beyond their error path. If localstripe cannot start, the tests fail (they never skip).
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
import stripe

from saas.billing.models import BillingAccount, Invoice, InvoiceLine, Plan
from saas.billing.stripe_sync import (
    StripeCallFailed,
    StripeDisabled,
    customer_ensure,
    invoice_push,
    minor_units,
    portal_session_create,
    stripe_enabled,
    subscription_ensure,
)
from saas.common.actor import Actor
from saas.common.errors import Conflict
from saas.tenancy.services import organization_create

API_KEY = "sk_test_trainyard"

LAUNCHER = r"""
import sys
from aiohttp import web
from localstripe import server
from localstripe.resources import Invoice, Plan, store

type(store).dump_to_disk = lambda self: None  # keep the fake in memory only
_replay = {}
_get_post_data = server.get_post_data


async def get_post_data(request, remove_auth=True):
    data = await _get_post_data(request, remove_auth)
    if data and request.path.startswith("/v1/subscriptions"):
        for item in data.get("items") or []:
            if isinstance(item, dict) and "price" in item:
                item["plan"] = item.pop("price")
    return data


server.get_post_data = get_post_data


def create_invoice(cls, customer=None, pending_invoice_items_behavior=None, **data):
    # A one-off invoice collecting the customer's pending items (localstripe's own create
    # only makes a subscription's next invoice).
    return cls(customer=customer, **data)


Invoice._api_create = classmethod(create_invoice)


@web.middleware
async def idempotency(request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method == "DELETE" and request.path == "/_config/data":
        _replay.clear()
    if request.method != "POST" or not key:
        return await handler(request)
    if key in _replay:
        status, body = _replay[key]
        return web.Response(status=status, body=body, content_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
    resp = await handler(request)
    if resp.status < 500:
        _replay[key] = (resp.status, resp.body)
    return resp


async def create_price(request):
    data = await get_post_data(request) or {}
    recurring = data.get("recurring") or {}
    plan = Plan(amount=int(data["unit_amount"]), currency=data["currency"],
                interval=recurring.get("interval", "month"), product=data["product"],
                metadata=data.get("metadata"))
    out = plan._export()
    out.update(object="price", unit_amount=plan.amount, type="recurring")
    return server.json_response(out)


async def finalize(request):
    inv = Invoice._api_retrieve(request.match_info["id"])
    if inv.status == "draft":
        inv._finalize()
    return server.json_response(inv._export())


server.app.middlewares.insert(0, idempotency)
server.app.router.add_post("/v1/prices", create_price)
server.app.router.add_post("/v1/invoices/{id}/finalize", finalize)
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> int:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(req, timeout=1) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    """A localstripe server on a free loopback port for the whole session."""
    try:
        import localstripe  # noqa: F401
    except ImportError as exc:  # fail loudly: these tests must not silently skip
        pytest.fail(f"localstripe is not installed ({exc}); pip install localstripe")
    port = _free_port()
    log = tmp_path_factory.mktemp("localstripe") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            pytest.fail(f"localstripe exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if _get(f"{url}/v1/customers") == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"localstripe did not answer within 30 s:\n{log.read_text()}")
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def fake_stripe(localstripe_url, settings):
    """Point the app at an emptied localstripe; returns an SDK client for assertions."""
    req = urllib.request.Request(f"{localstripe_url}/_config/data", method="DELETE")
    urllib.request.urlopen(req, timeout=5).close()
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = localstripe_url
    return stripe.StripeClient(API_KEY, base_addresses={"api": localstripe_url})


def make_account(slug: str = "acme", plan: str = "pro") -> BillingAccount:
    org = organization_create(
        slug=slug, name=slug.title(), owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    # The account exists from the organisation's creation; give it the plan.
    BillingAccount.objects.for_tenant(org).update(plan=Plan.objects.get(code=plan))
    return BillingAccount.objects.for_tenant(org).get()


def reload(account: BillingAccount) -> BillingAccount:
    return BillingAccount.objects.for_tenant(account.organization_id).get(pk=account.pk)


def make_invoice(account: BillingAccount, amounts: list[str]) -> Invoice:
    org = account.organization
    total = sum((Decimal(a) for a in amounts), Decimal(0))
    inv = Invoice.objects.for_tenant(org).create(
        organization=org,
        number=f"TY-{org.slug}-0001",
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 2, 1),
        currency="usd",
        subtotal=total,
        total=total,
        due_on=dt.date(2026, 2, 15),
        plan_code=account.plan.code,
    )
    for i, amount in enumerate(amounts, start=1):
        InvoiceLine.objects.for_tenant(org).create(
            organization=org,
            invoice=inv,
            position=i,
            kind=InvoiceLine.Kind.USAGE,
            description=f"line {i}",
            quantity=Decimal(1),
            unit_price=Decimal(amount),
            amount=Decimal(amount),
        )
    return inv


def lines_of(inv: Invoice) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.for_tenant(inv.organization_id).filter(invoice_id=inv.pk))


def stripe_invoices(client: stripe.StripeClient, customer: str) -> list:
    return list(client.v1.invoices.list(params={"customer": customer, "limit": 100}).data)


# --- without Stripe -----------------------------------------------------------------------


def test_disabled_without_api_key(db, settings):
    settings.STRIPE_API_KEY = ""
    assert stripe_enabled() is False
    with pytest.raises(StripeDisabled):
        customer_ensure(account=make_account())


@pytest.mark.parametrize(
    "amount, currency, minor",
    [("49.00", "usd", 4900), ("12.345", "usd", 1235), ("-5.00", "eur", -500), ("500", "jpy", 500)],
)
def test_minor_units(amount, currency, minor):
    assert minor_units(Decimal(amount), currency) == minor


def test_free_plan_has_no_subscription(db, settings):
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # never reached
    with pytest.raises(Conflict):
        subscription_ensure(account=make_account(plan="free"))


# --- against localstripe ------------------------------------------------------------------


def test_customer_ensure_creates_one_customer(db, fake_stripe):
    account = make_account()
    first = customer_ensure(account=account)
    again = customer_ensure(account=reload(account))
    assert first == again == reload(account).stripe_customer_id
    customers = fake_stripe.v1.customers.list(params={"limit": 100}).data
    assert [c.id for c in customers] == [first]
    assert customers[0].metadata["organization_id"] == account.organization_id
    assert customers[0].email == "owner@acme.test"


def test_customer_ensure_after_a_lost_write_reuses_the_customer(db, fake_stripe):
    # Stripe answered but our write was lost (say, a timeout): the idempotency key gets the
    # same customer back instead of a second one.
    account = make_account()
    first = customer_ensure(account=account)
    BillingAccount.objects.for_tenant(account.organization_id).update(stripe_customer_id="")
    assert customer_ensure(account=reload(account)) == first
    assert len(fake_stripe.v1.customers.list(params={"limit": 100}).data) == 1


def give_card(client: stripe.StripeClient, account: BillingAccount) -> None:
    """What Checkout would do: attach a card and make it the customer's default."""
    customer = customer_ensure(account=account)
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    pm = client.v1.payment_methods.create(params={"type": "card", "card": card})
    client.v1.payment_methods.attach(pm.id, params={"customer": customer})
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": pm.id}}
    )


def test_subscription_ensure_creates_price_and_one_subscription(db, fake_stripe):
    account = make_account(plan="pro")
    give_card(fake_stripe, account)
    account = reload(account)
    sub_id = subscription_ensure(account=account)
    fresh = reload(account)
    assert fresh.stripe_subscription_id == sub_id
    price_id = Plan.objects.get(code="pro").stripe_price_id
    assert price_id
    assert subscription_ensure(account=fresh) == sub_id
    subs = fake_stripe.v1.subscriptions.list(params={"customer": fresh.stripe_customer_id}).data
    assert [s.id for s in subs] == [sub_id]
    assert subs[0]["plan"]["id"] == price_id
    assert subs[0]["plan"]["amount"] == 4900
    assert subs[0].metadata["organization_id"] == account.organization_id

    # A second organisation on the same plan reuses the stored price.
    other = make_account("globex", plan="pro")
    give_card(fake_stripe, other)
    subscription_ensure(account=reload(other))
    assert Plan.objects.get(code="pro").stripe_price_id == price_id


def test_invoice_push_twice_gives_one_item_per_line_and_one_invoice(db, fake_stripe):
    account = make_account()
    inv = make_invoice(account, ["49.00", "12.35", "0.00", "-5.00"])
    stripe_id = invoice_push(invoice=inv)
    again = invoice_push(invoice=Invoice.objects.for_tenant(inv.organization_id).get(pk=inv.pk))
    assert again == stripe_id

    customer = reload(account).stripe_customer_id
    [remote] = stripe_invoices(fake_stripe, customer)
    assert remote.id == stripe_id
    assert remote.status == "open"  # finalised
    assert remote.metadata["invoice_id"] == inv.pk
    remote_lines = fake_stripe.v1.invoices.line_items.list(stripe_id, params={"limit": 100}).data
    assert sorted(li.amount for li in remote_lines) == [-500, 1235, 4900]
    assert {li.currency for li in remote_lines} == {"usd"}
    # No invoice items left pending on the customer.
    assert fake_stripe.v1.invoice_items.list(params={"customer": customer}).data == []

    stored = {li.position: li.stripe_invoice_item_id for li in lines_of(inv)}
    assert stored[3] == ""  # the zero line is not pushed
    assert {v for k, v in stored.items() if k != 3} == {li.invoice_item for li in remote_lines}
    assert Invoice.objects.for_tenant(inv.organization_id).get(pk=inv.pk).stripe_invoice_id == (
        stripe_id
    )


def test_invoice_push_retry_after_lost_writes_creates_nothing_new(db, fake_stripe):
    # Simulate a timeout after Stripe created everything but before our ids were stored.
    account = make_account()
    inv = make_invoice(account, ["49.00", "7.50"])
    stripe_id = invoice_push(invoice=inv)
    first_items = sorted(li.stripe_invoice_item_id for li in lines_of(inv))
    InvoiceLine.objects.for_tenant(inv.organization_id).update(stripe_invoice_item_id="")
    Invoice.objects.for_tenant(inv.organization_id).update(stripe_invoice_id="")

    fresh = Invoice.objects.for_tenant(inv.organization_id).get(pk=inv.pk)
    assert invoice_push(invoice=fresh) == stripe_id
    assert sorted(li.stripe_invoice_item_id for li in lines_of(inv)) == first_items
    customer = reload(account).stripe_customer_id
    assert len(stripe_invoices(fake_stripe, customer)) == 1
    lines = fake_stripe.v1.invoices.line_items.list(stripe_id, params={"limit": 100}).data
    assert len(lines) == 2


def test_partial_push_resumes_where_it_stopped(db, fake_stripe):
    # Items stored, invoice not yet created (the process died in between).
    account = make_account()
    inv = make_invoice(account, ["10.00", "20.00"])
    customer = customer_ensure(account=account)
    [line1, _line2] = lines_of(inv)
    item = fake_stripe.v1.invoice_items.create(
        params={"customer": customer, "amount": 1000, "currency": "usd"},
        options={"idempotency_key": line1.pk},
    )
    InvoiceLine.objects.for_tenant(inv.organization_id).filter(pk=line1.pk).update(
        stripe_invoice_item_id=item.id
    )
    stripe_id = invoice_push(invoice=inv)
    lines = fake_stripe.v1.invoices.line_items.list(stripe_id, params={"limit": 100}).data
    assert sorted(li.amount for li in lines) == [1000, 2000]


def test_stripe_errors_become_domain_errors(db, fake_stripe):
    # localstripe has no billing portal: its 404 must surface as StripeCallFailed (502).
    with pytest.raises(StripeCallFailed) as info:
        portal_session_create(account=make_account())
    assert info.value.status == 502


# --- a failed push is retried with backoff until it is pushed ------------------------------


def _due(inv: Invoice) -> Invoice:
    return Invoice.objects.for_tenant(inv.organization_id).get(pk=inv.pk)


def test_a_failed_push_is_retried_with_backoff_until_pushed(
    db, fake_stripe, localstripe_url, settings, closed_port, django_capture_on_commit_callbacks
):
    from saas.billing.services import period_close
    from saas.billing.services.stripe_push import BACKOFF_BASE, backoff, stripe_push_retry

    account = make_account(plan="pro")
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed_port}"  # Stripe unreachable
    with django_capture_on_commit_callbacks(execute=True):
        inv = period_close(
            organization=account.organization,
            period_start=dt.date(2026, 1, 1),
            actor=Actor.system(),
        )
    inv = _due(inv)
    assert inv.total == Decimal("49.00") and inv.stripe_invoice_id == ""
    assert inv.stripe_push_attempts == 1 and "StripeCallFailed" in inv.stripe_last_error
    first_retry = inv.stripe_next_attempt_at
    assert first_retry is not None

    # Not due yet: nothing is tried (a rerun of period close neither).
    assert stripe_push_retry(now=first_retry - dt.timedelta(seconds=1)) == {
        "pushed": 0,
        "failed": 0,
    }
    period_close(
        organization=account.organization, period_start=dt.date(2026, 1, 1), actor=Actor.system()
    )
    assert _due(inv).stripe_push_attempts == 1

    # Due and still failing: the delay doubles.
    assert stripe_push_retry(now=first_retry) == {"pushed": 0, "failed": 1}
    inv = _due(inv)
    assert inv.stripe_push_attempts == 2
    assert inv.stripe_next_attempt_at == first_retry + backoff(2) == first_retry + 2 * BACKOFF_BASE

    # Stripe is back: the next due run pushes it, once.
    settings.STRIPE_API_BASE = localstripe_url
    assert stripe_push_retry(now=inv.stripe_next_attempt_at) == {"pushed": 1, "failed": 0}
    inv = _due(inv)
    assert inv.stripe_invoice_id and inv.stripe_next_attempt_at is None
    assert inv.stripe_push_attempts == 3 and inv.stripe_last_error == ""
    assert stripe_push_retry(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=365)) == {
        "pushed": 0,
        "failed": 0,
    }
    [remote] = stripe_invoices(fake_stripe, reload(account).stripe_customer_id)
    assert remote.id == inv.stripe_invoice_id and remote.status == "open"
    lines = fake_stripe.v1.invoices.line_items.list(remote.id, params={"limit": 100}).data
    assert [li.amount for li in lines] == [4900]


def test_a_push_interrupted_after_stripe_answered_creates_nothing_new(db, fake_stripe):
    # The invoice was created in Stripe but the try died before it was marked pushed: the
    # retry finds it due, and the idempotency keys give back the same invoice.
    from saas.billing.services.stripe_push import stripe_push_retry

    account = make_account()
    inv = make_invoice(account, ["12.00"])
    stripe_id = invoice_push(invoice=inv)
    now = dt.datetime.now(dt.UTC)
    Invoice.objects.for_tenant(inv.organization_id).update(
        stripe_invoice_id="", stripe_next_attempt_at=now
    )
    InvoiceLine.objects.for_tenant(inv.organization_id).update(stripe_invoice_item_id="")
    assert stripe_push_retry(now=now) == {"pushed": 1, "failed": 0}
    assert _due(inv).stripe_invoice_id == stripe_id
    assert len(stripe_invoices(fake_stripe, reload(account).stripe_customer_id)) == 1


def test_backoff_doubles_up_to_its_cap():
    from saas.billing.services.stripe_push import BACKOFF_BASE, BACKOFF_CAP, backoff

    assert [backoff(n) for n in (1, 2, 3)] == [BACKOFF_BASE, 2 * BACKOFF_BASE, 4 * BACKOFF_BASE]
    assert backoff(40) == BACKOFF_CAP and backoff(1000) == BACKOFF_CAP


# --- credit ledger --------------------------------------------------------------------------


def test_a_credited_self_serve_invoice_reaches_stripe_with_its_credit_line(
    db, fake_stripe, django_capture_on_commit_callbacks
):
    from saas.billing.services import billing_credit_grant, period_close

    account = make_account(plan="pro")
    org = account.organization
    billing_credit_grant(
        organization=org, amount=Decimal("10.00"), reason="goodwill", actor=Actor.system()
    )
    with django_capture_on_commit_callbacks(execute=True):
        inv = period_close(organization=org, period_start=dt.date(2026, 1, 1), actor=Actor.system())
    inv = _due(inv)
    assert (inv.credit_applied, inv.total) == (Decimal("10.00"), Decimal("39.00"))
    assert inv.stripe_invoice_id and inv.stripe_next_attempt_at is None
    [remote] = stripe_invoices(fake_stripe, reload(account).stripe_customer_id)
    lines = fake_stripe.v1.invoices.line_items.list(remote.id, params={"limit": 100}).data
    assert sorted(li.amount for li in lines) == [-1000, 4900]
    assert remote.total == 3900


def test_a_credit_covering_a_stripe_billed_fee_is_still_pushed(
    db, fake_stripe, django_capture_on_commit_callbacks
):
    """The Stripe subscription bills the plan fee by itself, so a local invoice the credit
    brings to 0 still goes to Stripe: its credit line, alone, is a negative Stripe invoice
    (customer balance Stripe takes off the subscription's next invoice)."""
    from saas.billing.services import billing_credit_grant, period_close

    account = make_account(plan="pro")
    org = account.organization
    BillingAccount.objects.for_tenant(org).update(stripe_subscription_id="sub_billed_by_stripe")
    billing_credit_grant(
        organization=org, amount=Decimal("60.00"), reason="goodwill", actor=Actor.system()
    )
    with django_capture_on_commit_callbacks(execute=True):
        inv = period_close(organization=org, period_start=dt.date(2026, 1, 1), actor=Actor.system())
    inv = _due(inv)
    assert (inv.subtotal, inv.credit_applied, inv.total) == (
        Decimal("49.00"),
        Decimal("49.00"),
        Decimal("0.00"),
    )
    assert inv.stripe_invoice_id and inv.stripe_next_attempt_at is None
    [remote] = stripe_invoices(fake_stripe, reload(account).stripe_customer_id)
    lines = fake_stripe.v1.invoices.line_items.list(remote.id, params={"limit": 100}).data
    assert [li.amount for li in lines] == [-4900]
