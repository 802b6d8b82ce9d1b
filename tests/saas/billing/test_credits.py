"""The credit ledger: operator grants (validated, audited), append-only rows, and period close
drawing it down (once per invoice) after a contract's prepaid balance, against real PostgreSQL."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from saas.billing import services as billing
from saas.billing.models import (
    AppendOnlyError,
    Contract,
    CreditLedgerEntry,
    Invoice,
    InvoiceLine,
    Plan,
)
from saas.billing.selectors import credit_balance, credit_ledger_list, period_charges
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.tenancy.models import AuditEvent
from tests.conftest import make_tenant

pytestmark = pytest.mark.django_db
MAY = datetime.date(2026, 5, 1)
JUNE = datetime.date(2026, 6, 1)


def record(org, meter, qty, day=datetime.date(2026, 5, 10)):
    usage_record(
        organization_id=org.pk,
        meter=meter,
        quantity=D(str(qty)),
        occurred_at=timezone.make_aware(datetime.datetime.combine(day, datetime.time(12))),
        source_type="test",
        source_id=f"{meter}-{qty}-{day}",
    )


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", "ops@trainyard.test", "pw", is_staff=True)


@pytest.fixture
def org(db):
    return make_tenant("credit-co").org


def _rows(org) -> int:
    return CreditLedgerEntry.objects.for_tenant(org).count()


def _lines(inv: Invoice) -> list[tuple[str, str, D]]:
    return list(
        InvoiceLine.objects.for_tenant(inv.organization_id)
        .filter(invoice=inv)
        .values_list("kind", "description", "amount")
    )


# --- grants --------------------------------------------------------------------------------


def test_a_grant_is_a_ledger_row_an_audit_event_and_the_balance(org, staff):
    actor = Actor(user_id=staff.pk, ip="10.0.0.9")
    entry = billing.billing_credit_grant(
        organization=org, amount=D("10.00"), reason="  outage of 12 May  ", actor=actor
    )
    row = CreditLedgerEntry.objects.for_tenant(org).get()
    assert row.pk == entry.pk and row.pk.startswith("crd_")
    assert (row.kind, row.amount, row.currency, row.reason) == (
        "grant",
        D("10.00"),
        "usd",
        "outage of 12 May",
    )
    assert row.created_by_id == staff.pk and row.invoice_id is None
    event = AuditEvent.objects.for_tenant(org).get(action="billing.credit_granted")
    assert event.actor_user_id == staff.pk and event.ip == "10.0.0.9"
    assert event.target_id == entry.pk
    assert event.data == {
        "amount": "10.00",
        "currency": "usd",
        "reason": "outage of 12 May",
        "balance": "10.00",
    }
    # A form's string is parsed the same way; the balance is the sum.
    billing.billing_credit_grant(organization=org, amount="2.5", reason="again", actor=actor)
    assert credit_balance(organization=org) == D("12.50")
    assert credit_balance(organization=org.pk, currency="eur") == 0  # per currency
    assert [e.amount for e in credit_ledger_list(organization=org)] == [D("2.50"), D("10.00")]


@pytest.mark.parametrize(
    "amount",
    ["0", "0.00", "-5", "-0.01", "1.005", "abc", "", "NaN", "Infinity", "100000.01", "1e9"],
)
def test_bad_amounts_are_refused_and_nothing_is_written(org, amount):
    with pytest.raises(ValidationFailed) as err:
        billing.billing_credit_grant(
            organization=org, amount=amount, reason="goodwill", actor=Actor.system()
        )
    assert err.value.status == 400
    assert [e["field"] for e in err.value.errors] == ["amount"]
    assert _rows(org) == 0
    assert not AuditEvent.objects.for_tenant(org).filter(action="billing.credit_granted")


def test_the_largest_grant_and_trailing_zeros_are_fine(org):
    billing.billing_credit_grant(
        organization=org, amount=billing.CREDIT_GRANT_MAX, reason="r", actor=Actor.system()
    )
    billing.billing_credit_grant(organization=org, amount="1.500", reason="r", actor=Actor.system())
    assert credit_balance(organization=org) == D("100001.50")


def test_an_empty_reason_is_refused_with_the_amount_problem_listed_too(org):
    with pytest.raises(ValidationFailed) as err:
        billing.billing_credit_grant(
            organization=org, amount=D("5.00"), reason="   ", actor=Actor.system()
        )
    assert [e["field"] for e in err.value.errors] == ["reason"]
    with pytest.raises(ValidationFailed) as both:
        billing.billing_credit_grant(organization=org, amount="-1", reason="", actor=Actor.system())
    assert [e["field"] for e in both.value.errors] == ["amount", "reason"]
    assert _rows(org) == 0


def test_a_zero_decimal_currency_takes_whole_amounts_only(org):
    Plan.objects.filter(code="free").update(currency="jpy")
    with pytest.raises(ValidationFailed):
        billing.billing_credit_grant(
            organization=org, amount="10.50", reason="r", actor=Actor.system()
        )
    entry = billing.billing_credit_grant(
        organization=org, amount="1000", reason="r", actor=Actor.system()
    )
    assert entry.currency == "jpy" and credit_balance(organization=org) == D("1000")


# --- append-only ---------------------------------------------------------------------------


def test_ledger_rows_cannot_be_changed_or_deleted(org):
    entry = billing.billing_credit_grant(
        organization=org, amount=D("10.00"), reason="r", actor=Actor.system()
    )
    entry.amount = D("1000.00")
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    scoped = CreditLedgerEntry.objects.for_tenant(org)
    with pytest.raises(AppendOnlyError):
        scoped.update(amount=D("1000.00"))
    with pytest.raises(AppendOnlyError):
        scoped.filter(pk=entry.pk).delete()
    with pytest.raises(AppendOnlyError):
        CreditLedgerEntry.objects.unscoped_all_tenants().delete()
    with pytest.raises(AppendOnlyError), transaction.atomic():  # bulk_update opens its own
        scoped.bulk_update([entry], ["amount"])
    assert scoped.get().amount == D("10.00")


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "grant", "amount": D("-1.00"), "reason": "r"},  # a grant is positive
        {"kind": "grant", "amount": D("1.00"), "reason": ""},  # and has a reason
        {"kind": "drawdown", "amount": D("-1.00")},  # a drawdown names its invoice
        {"kind": "bonus", "amount": D("1.00"), "reason": "r"},
    ],
)
def test_the_database_refuses_malformed_entries(org, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLedgerEntry.objects.for_tenant(org).create(organization=org, currency="usd", **fields)


def test_an_over_grant_is_corrected_by_a_reversal_entry(org):
    grant = billing.billing_credit_grant(
        organization=org, amount=D("1000.00"), reason="typo", actor=Actor.system()
    )
    rev = billing.billing_credit_reverse(
        organization=org, amount="900", reason="correct the typo", actor=Actor.system()
    )
    assert rev.kind == "reversal" and rev.amount == D("-900.00") and rev.invoice_id is None
    assert credit_balance(organization=org) == D("100.00")
    # Append-only: the grant is still there, untouched.
    assert CreditLedgerEntry.objects.for_tenant(org).get(pk=grant.pk).amount == D("1000.00")
    ev = AuditEvent.objects.for_tenant(org).get(action="billing.credit_reversed")
    assert ev.data["amount"] == "900.00" and ev.data["balance"] == "100.00"


@pytest.mark.parametrize("amount", ["100.01", "0", "-5", "abc", "1e999"])
def test_a_reversal_never_exceeds_the_unused_balance_or_takes_bad_amounts(org, amount):
    billing.billing_credit_grant(
        organization=org, amount=D("100.00"), reason="goodwill", actor=Actor.system()
    )
    with pytest.raises(ValidationFailed):
        billing.billing_credit_reverse(
            organization=org, amount=amount, reason="take back", actor=Actor.system()
        )
    with pytest.raises(ValidationFailed):
        billing.billing_credit_reverse(
            organization=org, amount="1", reason="  ", actor=Actor.system()
        )
    assert credit_balance(organization=org) == D("100.00")
    assert CreditLedgerEntry.objects.for_tenant(org).count() == 1


def test_the_database_refuses_a_reversal_without_reason_or_with_an_invoice_or_positive(org):
    for fields in (
        {"kind": "reversal", "amount": D("-1.00"), "reason": ""},
        {"kind": "reversal", "amount": D("1.00"), "reason": "x"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            CreditLedgerEntry.objects.for_tenant(org).create(
                organization=org, currency="usd", **fields
            )


# --- period close --------------------------------------------------------------------------


@pytest.fixture
def self_serve(org):
    """A self-serve organisation on pro, its fee set to 0 so its charges are its usage."""
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    Plan.objects.filter(code="pro").update(monthly_fee=D("0"))
    org.refresh_from_db()
    return org


def test_self_serve_period_close_draws_the_ledger_once(self_serve):
    org = self_serve
    billing.billing_credit_grant(
        organization=org, amount=D("10.00"), reason="goodwill", actor=Actor.system()
    )
    record(org, Meter.TRAINING_GPU_SECONDS, 6250)  # nothing included, × $0.0012 = $7.50
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert ("credit", "Credit applied", D("-7.50")) in _lines(inv)
    assert [(k, a) for k, _, a in _lines(inv)] == [("usage", D("7.50")), ("credit", D("-7.50"))]
    assert (inv.subtotal, inv.credit_applied, inv.tax, inv.total) == (
        D("7.50"),
        D("7.50"),
        D("0.00"),
        D("0.00"),
    )
    assert credit_balance(organization=org) == D("2.50")
    drawdown = CreditLedgerEntry.objects.for_tenant(org).get(kind="drawdown")
    assert (drawdown.amount, drawdown.invoice_id, drawdown.currency) == (D("-7.50"), inv.pk, "usd")
    issued = AuditEvent.objects.for_tenant(org).get(action="invoice.issued")
    assert issued.data["ledger_credit_drawn"] == "7.50"
    assert issued.data["prepaid_credit_drawn"] == "0"
    # A second run returns the same invoice and draws nothing more.
    again = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert again.pk == inv.pk and Invoice.objects.for_tenant(org).count() == 1
    assert credit_balance(organization=org) == D("2.50") and _rows(org) == 2
    # The next month draws what is left, and never more.
    record(org, Meter.TRAINING_GPU_SECONDS, 6250, day=datetime.date(2026, 6, 3))
    june = billing.period_close(organization=org, period_start=JUNE, actor=Actor.system())
    assert (june.credit_applied, june.total) == (D("2.50"), D("5.00"))
    assert credit_balance(organization=org) == D("0.00")


def test_a_second_drawdown_for_an_invoice_is_refused_by_the_database(self_serve):
    org = self_serve
    billing.billing_credit_grant(
        organization=org, amount=D("10.00"), reason="r", actor=Actor.system()
    )
    record(org, Meter.TRAINING_GPU_SECONDS, 6250)
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditLedgerEntry.objects.for_tenant(org).create(
            organization=org, kind="drawdown", amount=D("-1.00"), currency="usd", invoice=inv
        )


def test_the_period_preview_shows_the_ledger_credit(self_serve):
    org = self_serve
    today = timezone.now().date()
    record(org, Meter.TRAINING_GPU_SECONDS, 6250, day=today)
    billing.billing_credit_grant(
        organization=org, amount=D("5.00"), reason="r", actor=Actor.system()
    )
    start, end = billing.pricing.month_bounds(today)
    preview = period_charges(organization=org, start=start, end=end)
    assert (preview.credit_applied, preview.total) == (D("5.00"), D("2.50"))
    assert _rows(org) == 1  # a preview draws nothing


def _contract(org, prepaid: str) -> Contract:
    billing.billing_plan_change(organization=org, plan_code="enterprise", actor=Actor.system())
    org.refresh_from_db()
    return Contract.objects.for_tenant(org).create(
        organization=org,
        starts_on=datetime.date(2026, 1, 1),
        ends_on=datetime.date(2026, 12, 31),
        prepaid_credit_balance=D(prepaid),
        tax_rate=D("0.2000"),
    )


def test_contract_tenant_draws_the_prepaid_balance_before_the_ledger(org):
    contract = _contract(org, "30.00")
    billing.billing_credit_grant(
        organization=org, amount=D("50.00"), reason="r", actor=Actor.system()
    )
    record(org, Meter.PREDICTIONS, 150000)  # × $0.0004 = $60.00
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert ("credit", "Prepaid credit applied", D("-60.00")) in _lines(inv)
    assert (inv.subtotal, inv.credit_applied, inv.tax, inv.total) == (
        D("60.00"),
        D("60.00"),
        D("0.00"),
        D("0.00"),
    )
    contract.refresh_from_db()
    assert contract.prepaid_credit_balance == D("0.00")  # all 30 of it, first
    assert credit_balance(organization=org) == D("20.00")  # then 30 of the 50
    drawdown = CreditLedgerEntry.objects.for_tenant(org).get(kind="drawdown")
    assert drawdown.amount == D("-30.00") and drawdown.invoice_id == inv.pk
    billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    contract.refresh_from_db()
    assert contract.prepaid_credit_balance == D("0.00") and credit_balance(organization=org) == D(
        "20.00"
    )


def test_contract_prepaid_that_covers_the_invoice_leaves_the_ledger_alone(org):
    contract = _contract(org, "100.00")
    billing.billing_credit_grant(
        organization=org, amount=D("50.00"), reason="r", actor=Actor.system()
    )
    record(org, Meter.PREDICTIONS, 100000)  # $40.00
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert (inv.credit_applied, inv.total) == (D("40.00"), D("0.00"))
    contract.refresh_from_db()
    assert contract.prepaid_credit_balance == D("60.00")
    assert credit_balance(organization=org) == D("50.00")
    assert not CreditLedgerEntry.objects.for_tenant(org).filter(kind="drawdown").exists()


def test_without_credit_a_contract_invoice_is_unchanged(org):
    _contract(org, "0.00")
    record(org, Meter.PREDICTIONS, 100000)  # $40.00, 20 % tax
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert (inv.credit_applied, inv.tax, inv.total) == (D("0.00"), D("8.00"), D("48.00"))
    assert _rows(org) == 0


def test_a_correction_larger_than_the_months_usage_is_credited_not_trued_up(org):
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    org.refresh_from_db()
    fee = Plan.objects.get(code="pro").monthly_fee
    assert fee > D("7.50")
    # A correction for a job charged last month: May's only training usage is negative.
    record(org, Meter.TRAINING_GPU_SECONDS, -6250)  # -$7.50
    inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
    assert "true_up" not in [k for k, _, _ in _lines(inv)]  # a plan has no committed minimum
    assert inv.total == fee - D("7.50")


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_period_closes_racing_for_one_org_draw_the_ledger_once():
    import threading

    from django.db import connections

    from saas.billing.models import PlanPrice, RateCard
    from saas.billing.seed import seed

    if not Plan.objects.exists():  # a transactional test may start after a flush
        seed(Plan, PlanPrice, RateCard)
    org = make_tenant("close-racer").org
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    Plan.objects.filter(code="pro").update(monthly_fee=D("0"))
    org.refresh_from_db()
    billing.billing_credit_grant(
        organization=org, amount=D("10.00"), reason="goodwill", actor=Actor.system()
    )
    record(org, Meter.TRAINING_GPU_SECONDS, 6250)  # $7.50
    barrier = threading.Barrier(3)
    numbers: list[str] = []
    errors: list[BaseException] = []

    def close() -> None:
        try:
            barrier.wait(timeout=10)
            inv = billing.period_close(organization=org, period_start=MAY, actor=Actor.system())
            numbers.append(inv.number)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    def grant() -> None:  # a grant landing at the same moment is either drawn or left whole
        try:
            barrier.wait(timeout=10)
            billing.billing_credit_grant(
                organization=org, amount=D("1.00"), reason="race", actor=Actor.system()
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=t) for t in (close, close, grant)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors, errors
    assert len(numbers) == 2 and numbers[0] == numbers[1]
    assert Invoice.objects.for_tenant(org).count() == 1
    assert CreditLedgerEntry.objects.for_tenant(org).filter(kind="drawdown").count() == 1
    inv = Invoice.objects.for_tenant(org).get()
    assert inv.credit_applied == D("7.50")
    assert credit_balance(organization=org) == D("3.50")  # 10 + 1 − 7.50, never below zero
