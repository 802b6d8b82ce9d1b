"""The console's tenants pages and actions, through the domain services, audited."""

from __future__ import annotations

import pytest

from saas.apikeys.models import ApiKey
from saas.tenancy.models import AuditEvent, Organization

pytestmark = pytest.mark.django_db


def test_search_finds_by_member_email_and_slug(console, acme, globex):
    by_email = console.get("/console/tenants?q=developer@acme.test").content.decode()
    assert "acme" in by_email and "globex" not in by_email
    by_slug = console.get("/console/tenants?q=glob").content.decode()
    assert "globex" in by_slug and f"/console/tenants/{acme.org.pk}" not in by_slug


def test_detail_shows_the_key_prefix_never_the_secret(console, acme):
    client = acme.key("owner")
    secret = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    html = console.get(f"/console/tenants/{acme.org.pk}").content.decode()
    assert client.api_key.prefix in html
    assert secret not in html
    assert "owner@acme.test" in html
    assert console.get("/console/tenants/org_missing").status_code == 404


def test_suspend_needs_a_reason_and_is_audited_with_the_staff_user(console, operator, acme):
    path = f"/console/tenants/{acme.org.pk}/suspend"
    refused = console.post(path, {"reason": "  "})
    assert refused.status_code == 400
    assert Organization.objects.get(pk=acme.org.pk).status == "active"  # nothing changed
    done = console.post(path, {"reason": "chargeback fraud ticket 77"})
    assert done.status_code == 302
    assert Organization.objects.get(pk=acme.org.pk).status == "suspended"
    event = AuditEvent.objects.for_tenant(acme.org).filter(actor_user_id=operator.pk).latest("pk")
    assert "suspend" in event.action
    back = console.post(f"/console/tenants/{acme.org.pk}/reactivate", {"reason": "resolved"})
    assert back.status_code == 302
    assert Organization.objects.get(pk=acme.org.pk).status == "active"


def test_revoke_a_key_from_the_console(console, operator, acme, globex):
    key = acme.key("owner").api_key
    other = globex.key("owner").api_key
    # Another tenant's key through this tenant's URL: 404, untouched.
    wrong = console.post(
        f"/console/tenants/{acme.org.pk}/revoke_key", {"key_id": other.pk, "reason": "leak"}
    )
    assert wrong.status_code == 404
    assert ApiKey.objects.for_tenant(globex.org).get(pk=other.pk).revoked_at is None
    resp = console.post(
        f"/console/tenants/{acme.org.pk}/revoke_key", {"key_id": key.pk, "reason": "leaked"}
    )
    assert resp.status_code == 302
    assert ApiKey.objects.for_tenant(acme.org).get(pk=key.pk).revoked_at is not None
    # One event, the service's own, carrying the operator and the reason.
    note = AuditEvent.objects.for_tenant(acme.org).get(action="api_key.revoked")
    assert note.actor_user_id == operator.pk and note.data["reason"] == "leaked"


def test_change_plan_from_the_console_audits_the_reason(console, operator, acme):
    resp = console.post(
        f"/console/tenants/{acme.org.pk}/plan", {"plan": "pro", "reason": "won deal 12"}
    )
    assert resp.status_code == 302
    ev = AuditEvent.objects.for_tenant(acme.org).get(action="billing_account.plan_changed")
    assert ev.actor_user_id == operator.pk
    assert (ev.data["old"], ev.data["new"], ev.data["reason"]) == ("free", "pro", "won deal 12")


def test_change_plan_refuses_an_unknown_plan(console, acme):
    resp = console.post(
        f"/console/tenants/{acme.org.pk}/plan", {"plan": "platinum-x", "reason": "upsell"}
    )
    assert resp.status_code == 400
    assert (
        not AuditEvent.objects.for_tenant(acme.org)
        .filter(action="billing_account.plan_changed")
        .exists()
    )


def test_unknown_action_and_invoice_are_404(console, acme):
    assert (
        console.post(f"/console/tenants/{acme.org.pk}/explode", {"reason": "x"}).status_code == 404
    )
    resp = console.post(
        f"/console/tenants/{acme.org.pk}/repush_invoice", {"invoice_id": "inv_nope", "reason": "x"}
    )
    assert resp.status_code == 404


def test_grant_credit_from_the_console_shows_the_balance_and_the_entry(console, operator, acme):
    from decimal import Decimal

    from saas.billing.models import CreditLedgerEntry
    from saas.billing.selectors import credit_balance

    path = f"/console/tenants/{acme.org.pk}/grant_credit"
    resp = console.post(path, {"amount": "10.00", "reason": "outage of 12 May"})
    assert resp.status_code == 302 and resp["Location"] == f"/console/tenants/{acme.org.pk}"
    entry = CreditLedgerEntry.objects.for_tenant(acme.org).get()
    assert (entry.kind, entry.amount, entry.created_by_id) == (
        "grant",
        Decimal("10.00"),
        operator.pk,
    )
    assert credit_balance(organization=acme.org) == Decimal("10.00")
    event = AuditEvent.objects.for_tenant(acme.org).get(action="billing.credit_granted")
    assert event.actor_user_id == operator.pk and event.data["reason"] == "outage of 12 May"
    html = console.get(f"/console/tenants/{acme.org.pk}").content.decode()
    assert '<strong id="credit-balance">10.00 USD</strong>' in html
    assert "outage of 12 May" in html and "ops@trainyard.test" in html


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"amount": "0", "reason": "r"}, "more than zero"),
        ({"amount": "-5", "reason": "r"}, "more than zero"),
        ({"amount": "1.005", "reason": "r"}, "decimal places"),
        ({"amount": "ten", "reason": "r"}, "must be a number"),
        ({"amount": "1000000", "reason": "r"}, "at most 100,000"),
        ({"amount": "5.00", "reason": "  "}, "A reason is required."),
        ({"reason": "r"}, "must be a number"),
    ],
)
def test_grant_credit_refuses_bad_input_with_a_400_listing_it(console, acme, data, problem):
    from saas.billing.models import CreditLedgerEntry

    resp = console.post(f"/console/tenants/{acme.org.pk}/grant_credit", data)
    assert resp.status_code == 400
    html = resp.content.decode()
    assert problem in html and 'role="alert"' in html
    assert not CreditLedgerEntry.objects.for_tenant(acme.org).exists()
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="billing.credit_granted")


def test_grant_credit_lists_both_problems_at_once(console, acme):
    resp = console.post(f"/console/tenants/{acme.org.pk}/grant_credit", {"amount": "x"})
    html = resp.content.decode()
    assert resp.status_code == 400
    assert "must be a number" in html and "A reason is required." in html


@pytest.mark.parametrize("role", ["owner", "admin", "billing"])
def test_non_staff_cannot_grant_credit(acme, role):
    from saas.billing.models import CreditLedgerEntry

    resp = acme.session(role).post(
        f"/console/tenants/{acme.org.pk}/grant_credit", {"amount": "10.00", "reason": "me"}
    )
    assert resp.status_code == 404
    assert not CreditLedgerEntry.objects.for_tenant(acme.org).exists()


HOSTILE_AMOUNTS = [
    "NaN",
    "sNaN",
    "-Infinity",
    "Infinity",
    "5,00",
    "1e999999999",
    "1e-999999999",
    "1" * 5000,
    "0." + "0" * 5000 + "1",
    "5\x00",
    # 41 characters meaning 25.00; its first 40 characters read 2.50.
    "2.5" + "0" * 34 + "e+01",
]


@pytest.mark.parametrize("amount", HOSTILE_AMOUNTS, ids=lambda a: repr(a)[:24])
def test_grant_credit_refuses_hostile_amounts_with_a_400_and_writes_nothing(console, acme, amount):
    from saas.billing.models import CreditLedgerEntry

    resp = console.post(
        f"/console/tenants/{acme.org.pk}/grant_credit", {"amount": amount, "reason": "r"}
    )
    assert resp.status_code == 400, CreditLedgerEntry.objects.for_tenant(acme.org).first()
    assert not CreditLedgerEntry.objects.for_tenant(acme.org).exists()
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="billing.credit_granted")


@pytest.mark.parametrize(("amount", "granted"), [("1e5", "100000.00"), (" 5 ", "5.00")])
def test_grant_credit_takes_exponents_and_spaces_as_the_number_they_are(
    console, acme, amount, granted
):
    from decimal import Decimal

    from saas.billing.models import CreditLedgerEntry

    resp = console.post(
        f"/console/tenants/{acme.org.pk}/grant_credit", {"amount": amount, "reason": "r"}
    )
    assert resp.status_code == 302
    assert CreditLedgerEntry.objects.for_tenant(acme.org).get().amount == Decimal(granted)


def test_grant_credit_with_a_nul_in_the_reason_is_a_400_not_a_500(console, acme):
    from saas.billing.models import CreditLedgerEntry

    console.raise_request_exception = False
    resp = console.post(
        f"/console/tenants/{acme.org.pk}/grant_credit", {"amount": "5", "reason": "out\x00age"}
    )
    assert resp.status_code == 400
    assert not CreditLedgerEntry.objects.for_tenant(acme.org).exists()


def test_take_unused_credit_back_from_the_console(console, operator, acme):
    from decimal import Decimal

    from saas.billing.selectors import credit_balance

    base = f"/console/tenants/{acme.org.pk}"
    assert (
        console.post(f"{base}/grant_credit", {"amount": "50", "reason": "outage"}).status_code
        == 302
    )
    page = console.get(base).content.decode()
    assert "Take unused credit back" in page
    too_much = console.post(f"{base}/reverse_credit", {"amount": "60", "reason": "typo"})
    assert too_much.status_code == 400 and b"unused balance" in too_much.content
    done = console.post(f"{base}/reverse_credit", {"amount": "45", "reason": "typo: 5 meant"})
    assert done.status_code == 302
    assert credit_balance(organization=acme.org) == Decimal("5.00")
    ev = AuditEvent.objects.for_tenant(acme.org).get(action="billing.credit_reversed")
    assert ev.actor_user_id == operator.pk and ev.data["reason"] == "typo: 5 meant"


def test_detail_shows_this_periods_usage_per_meter(console, acme):
    from decimal import Decimal

    from django.utils import timezone

    from saas.metering.models import Meter
    from saas.metering.services import usage_record

    usage_record(
        organization_id=acme.org.pk,
        meter=Meter.TRAINING_COMPUTE_SECONDS,
        quantity=Decimal(3000),
        occurred_at=timezone.now(),
        source_type="test",
        source_id="u1",
    )
    html = console.get(f"/console/tenants/{acme.org.pk}").content.decode()
    assert "<td>Training compute" in html and "<td>3000</td>" in html
    assert "Charges so far this period" in html
