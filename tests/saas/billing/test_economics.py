"""Unit economics reconcile with the invoices to the cent, and with the ledger meter by meter.

Real period close against the real ledger: three tenants (a profitable pro tenant, a free
tenant that costs money, a contract tenant with minimum, credit and tax), every cost meter.
"""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
from django.db.models import Sum
from django.utils import timezone

from saas.billing import services as billing
from saas.billing.economics import COST_METERS, round_shares, unit_economics
from saas.billing.models import Contract, Invoice
from saas.billing.selectors import period_charges
from saas.common.actor import Actor
from saas.metering.models import Meter, UsageEvent
from saas.metering.services import usage_record
from tests.conftest import make_tenant

pytestmark = pytest.mark.django_db
MAY = datetime.date(2026, 5, 1)
JUNE = datetime.date(2026, 6, 1)


def record(org, meter, qty, cost, day=datetime.date(2026, 5, 10), **dims):
    at = timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))
    usage_record(
        organization_id=org.pk,
        meter=meter,
        quantity=D(str(qty)),
        occurred_at=at,
        source_type="test",
        source_id=f"{meter}-{qty}-{day}-{cost}",
        compute_cost=D(str(cost)),
        dimensions=dims,
    )


@pytest.fixture
def three(db):
    rich = make_tenant("rich").org
    billing.billing_plan_change(organization=rich, plan_code="pro", actor=Actor.system())
    # Costs chosen with sub-cent parts so the per-meter rounding has to be exact.
    record(rich, Meter.TRAINING_COMPUTE_SECONDS, 25000, "0.504")
    record(rich, Meter.TRAINING_GPU_SECONDS, 600, "0.483")
    record(rich, Meter.PREDICTIONS, 150000, "0.0134", cpu_seconds=0.67)
    record(
        rich, Meter.PREDICTIONS, 20000, "0.0021", day=datetime.date(2026, 5, 20), cpu_seconds=0.105
    )
    record(rich, Meter.STORAGE_GB_HOURS, 300, "0.00945")
    record(rich, Meter.PREDICTIONS, 999, "5", day=JUNE)  # next month: not May's

    loser = make_tenant("loser").org  # free plan: no revenue, real cost
    record(loser, Meter.TRAINING_COMPUTE_SECONDS, 3000, "0.06")
    record(loser, Meter.STORAGE_GB_HOURS, 700, "0.02205")

    bigco = make_tenant("bigco").org
    billing.billing_plan_change(organization=bigco, plan_code="enterprise", actor=Actor.system())
    Contract.objects.for_tenant(bigco).create(
        organization=bigco,
        starts_on=datetime.date(2026, 1, 1),
        ends_on=datetime.date(2026, 12, 31),
        committed_monthly_minimum=D("500.00"),
        prepaid_credit_balance=D("120.00"),
        tax_rate=D("0.2000"),
    )
    record(bigco, Meter.PREDICTIONS, 300000, "0.9", cpu_seconds=45.0)
    record(bigco, Meter.TRAINING_COMPUTE_SECONDS, 50000, "1.0")
    return {"rich": rich, "loser": loser, "bigco": bigco}


def _close_all(orgs) -> dict[str, Invoice]:
    return {
        slug: billing.period_close(actor=Actor.system(), organization=o, period_start=MAY)
        for slug, o in orgs.items()
    }


def test_closed_month_reconciles_with_the_invoices_to_the_cent(three):
    invoices = _close_all(three)
    month = unit_economics(start=MAY, today=datetime.date(2026, 7, 15))
    rows = {t.organization: t for t in month.tenants}
    for slug, inv in invoices.items():
        t = rows[slug]
        assert t.invoice_number == inv.number and t.revenue_accrued == 0
        assert t.revenue == t.revenue_invoiced == inv.total - inv.tax
        assert t.cost == inv.compute_cost  # period close priced the same ledger
        assert sum(t.cost_by_meter.values()) == t.cost  # the meters add up exactly
        for meter in COST_METERS:
            ledger = UsageEvent.objects.for_tenant(three[slug]).filter(
                meter=meter, occurred_at__date__gte=MAY, occurred_at__date__lt=JUNE
            ).aggregate(c=Sum("compute_cost"))["c"] or D(0)
            assert abs(t.cost_by_meter[meter] - ledger) <= D("0.01"), (slug, meter)
        assert t.gross_margin == t.revenue - t.cost
    # All tenants together equal all invoices together, to the cent.
    assert sum(t.revenue for t in month.tenants) == sum(i.total - i.tax for i in invoices.values())
    # Spot figures: pro fee 49 + usage; bigco 500 minimum − 120 credit.
    assert rows["bigco"].revenue == D("380.00")
    assert rows["rich"].cost == D("1.01")  # 0.504 + 0.483 + 0.0155 + 0.00945 = 1.01195
    assert rows["rich"].cost_by_meter == {
        Meter.TRAINING_COMPUTE_SECONDS: D("0.50"),
        Meter.TRAINING_GPU_SECONDS: D("0.48"),
        Meter.PREDICTIONS: D("0.02"),  # 0.0155: the two largest remainders get the cents
        Meter.STORAGE_GB_HOURS: D("0.01"),  # 0.00945
    }
    assert rows["rich"].inference_cpu_seconds == D("0.775")
    assert rows["bigco"].inference_cpu_seconds == D("45")
    assert rows["loser"].revenue == 0 and rows["loser"].cost == D("0.08")
    assert rows["loser"].losing and rows["loser"].margin_pct is None
    assert not rows["rich"].losing and rows["rich"].margin_pct > 90
    # Per plan: sums of its tenants.
    plans = {p.plan: p for p in month.plans}
    for code, p in plans.items():
        mine = [t for t in month.tenants if t.plan == code]
        assert p.tenants == len(mine)
        assert p.revenue == sum(t.revenue for t in mine) and p.cost == sum(t.cost for t in mine)
        assert p.losing == sum(t.losing for t in mine)
    assert plans["free"].losing >= 1


def test_an_open_month_accrues_what_its_invoice_will_say(three):
    # On 20 May nothing is invoiced: revenue is the invoice so far (usage up to 20 May).
    month = unit_economics(start=MAY, today=datetime.date(2026, 5, 20))
    rows = {t.organization: t for t in month.tenants}
    assert month.as_of == datetime.date(2026, 5, 20)
    for slug, org in three.items():
        t = rows[slug]
        preview = period_charges(organization=org, start=MAY, end=datetime.date(2026, 5, 21))
        assert t.invoice_number is None and t.revenue_invoiced == 0
        assert t.revenue == t.revenue_accrued == preview.subtotal - preview.credit_applied
    accrued = {slug: rows[slug].revenue for slug in three}
    # Nothing more happens in May; at close, accrued becomes invoiced with no jump.
    _close_all(three)
    after = {t.organization: t for t in unit_economics(start=MAY, today=JUNE).tenants}
    assert {slug: after[slug].revenue for slug in three} == accrued
    assert all(after[slug].invoice_number for slug in three)


def test_a_month_still_to_come_has_neither_revenue_nor_cost(three):
    month = unit_economics(start=datetime.date(2026, 9, 1), today=datetime.date(2026, 5, 20))
    assert all(t.revenue == 0 and t.cost == 0 for t in month.tenants)


def test_revenue_in_another_currency_has_no_margin_and_stays_out_of_plan_totals(three):
    Contract.objects.for_tenant(three["bigco"]).update(currency="eur")
    invoices = _close_all(three)
    assert invoices["bigco"].currency == "eur"
    month = unit_economics(start=MAY, today=JUNE)
    big = next(t for t in month.tenants if t.organization == "bigco")
    assert not big.comparable and big.gross_margin is None and not big.losing
    assert "enterprise" not in {p.plan for p in month.plans}


@pytest.mark.parametrize(
    "parts,expected,total",
    [
        (
            {"a": D("0.005"), "b": D("0.005"), "c": D("0.005")},
            [D("0.01"), D("0.01"), D("0")],
            D("0.02"),
        ),
        ({"a": D("1.004"), "b": D("2.004")}, [D("1.00"), D("2.01")], D("3.01")),
        ({"a": D("0"), "b": D("0")}, [D("0"), D("0")], D("0")),
        ({"a": D("5.00"), "b": D("-0.004")}, [D("5.00"), D("0")], D("5.00")),
    ],
)
def test_largest_remainder_rounding_always_adds_up(parts, expected, total):
    got, t = round_shares(parts, "usd")
    assert t == total and sum(got.values()) == total
    assert [got[k] for k in parts] == expected


def test_an_open_month_accrues_in_the_contract_currency_not_the_plan_currency(three):
    # Review finding: the accrual labelled a eur contract's preview with the plan's currency
    # (usd), so eur revenue was compared with usd cost and summed into the plan totals.
    Contract.objects.for_tenant(three["bigco"]).update(currency="eur")
    month = unit_economics(start=MAY, today=datetime.date(2026, 5, 20))
    big = next(t for t in month.tenants if t.organization == "bigco")
    assert big.invoice_number is None and big.revenue_accrued > 0
    assert big.currency == "eur"
    assert not big.comparable and big.gross_margin is None
    assert "enterprise" not in {p.plan for p in month.plans}
