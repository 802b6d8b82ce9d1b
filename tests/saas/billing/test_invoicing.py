"""Invoice arithmetic, property-based (hypothesis): Decimal throughout, one rounding per line."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from saas.billing.invoicing import MeterCharge, compute_invoice
from saas.billing.pricing import round_money, to_minor_units

money = st.decimals(min_value=0, max_value=100000, places=2)
qty = st.decimals(min_value=0, max_value=10**7, places=6)
price = st.decimals(min_value=0, max_value=10, places=8)
rate = st.decimals(min_value=0, max_value=Decimal("0.3"), places=4)
charges = st.lists(
    st.builds(
        lambda m, q, i, p: MeterCharge(m, q, i, p, m),
        st.sampled_from(["a", "b", "c"]),
        qty,
        qty,
        price,
    ),
    max_size=5,
)


@given(
    fee=money,
    charges=charges,
    minimum=money,
    credit=money,
    tax_rate=rate,
    currency=st.sampled_from(["usd", "eur", "jpy"]),
)
def test_invoice_invariants(fee, charges, minimum, credit, tax_rate, currency):
    inv = compute_invoice(
        currency=currency,
        subscription_fee=fee,
        subscription_label="plan",
        charges=charges,
        committed_minimum=minimum,
        credit_balance=credit,
        tax_rate=tax_rate,
    )
    unit = Decimal("1") if currency == "jpy" else Decimal("0.01")
    for line in inv.lines:
        assert isinstance(line.amount, Decimal)
        assert line.amount == line.amount.quantize(unit)  # rounded to the minor unit
    positive = [ln for ln in inv.lines if ln.kind != "credit"]
    assert inv.subtotal == sum((ln.amount for ln in positive), Decimal(0))
    assert inv.total == inv.subtotal - inv.credit_applied + inv.tax
    assert inv.total >= 0 and inv.credit_applied >= 0 and inv.credit_remaining >= 0
    assert inv.credit_applied + inv.credit_remaining == credit
    assert inv.credit_applied <= inv.subtotal
    # usage lines are rounded once, half-up, from the exact product
    for c, ln in zip(charges, [ln for ln in inv.lines if ln.kind == "usage"], strict=True):
        exact = max(Decimal(0), c.quantity - c.included_units) * c.unit_price
        assert ln.amount == exact.quantize(unit, rounding=ROUND_HALF_UP)
    usage = sum((ln.amount for ln in inv.lines if ln.kind in ("usage", "true_up")), Decimal(0))
    assert usage >= round_money(minimum, currency)  # the minimum is always met


@pytest.mark.parametrize(
    "usage_amount, minimum, true_up",
    [
        ("99.99", "100.00", "0.01"),
        ("100.00", "100.00", None),
        ("100.01", "100.00", None),
        ("0", "100.00", "100.00"),
    ],
)
def test_true_up_at_the_boundary(usage_amount, minimum, true_up):
    charges = [MeterCharge("m", Decimal(usage_amount), Decimal(0), Decimal(1), "m")]
    inv = compute_invoice(
        currency="usd",
        subscription_fee=Decimal(0),
        subscription_label="",
        charges=charges,
        committed_minimum=Decimal(minimum),
        credit_balance=Decimal(0),
        tax_rate=Decimal(0),
    )
    lines = [ln for ln in inv.lines if ln.kind == "true_up"]
    assert (str(lines[0].amount) if lines else None) == true_up
    assert inv.total == max(Decimal(usage_amount), Decimal(minimum))


def test_half_up_rounding_and_minor_units():
    assert round_money(Decimal("0.005"), "usd") == Decimal("0.01")
    assert round_money(Decimal("0.0049999"), "usd") == Decimal("0.00")
    assert round_money(Decimal("2.5"), "jpy") == Decimal("3")
    assert to_minor_units(Decimal("12.345"), "usd") == 1235


def test_credit_never_exceeds_the_subtotal_and_never_goes_negative():
    inv = compute_invoice(
        currency="usd",
        subscription_fee=Decimal("49"),
        subscription_label="pro",
        charges=[],
        committed_minimum=Decimal(0),
        credit_balance=Decimal("100"),
        tax_rate=Decimal("0.2"),
    )
    assert inv.credit_applied == Decimal("49.00") and inv.credit_remaining == Decimal("51.00")
    assert inv.total == Decimal("0.00") and inv.tax == Decimal("0.00")
    with pytest.raises(ValueError):
        compute_invoice(
            currency="usd",
            subscription_fee=Decimal(0),
            subscription_label="",
            charges=[],
            committed_minimum=Decimal(0),
            credit_balance=Decimal(-1),
            tax_rate=Decimal(0),
        )


def _signed(amount: str) -> MeterCharge:
    """A correction: a signed (negative) quantity at $1."""
    return MeterCharge("a", Decimal(amount), Decimal(0), Decimal(1), "correction", signed=True)


def test_a_correction_beyond_the_months_charges_lowers_the_invoice_and_spares_the_credit():
    inv = compute_invoice(
        currency="usd",
        subscription_fee=Decimal("49"),
        subscription_label="plan",
        charges=[_signed("-60")],
        committed_minimum=Decimal(0),  # self-serve: nothing to true up to
        credit_balance=Decimal("10.00"),
        tax_rate=Decimal("0.1"),
    )
    assert [ln.kind for ln in inv.lines] == ["subscription", "usage"]
    assert inv.subtotal == Decimal("-11.00") and inv.credit_applied == 0
    assert inv.credit_remaining == Decimal("10.00")  # never a negative draw
    assert inv.tax == Decimal("-1.10") and inv.total == Decimal("-12.10")  # owed to them


def test_a_committed_minimum_is_still_met_when_the_months_usage_is_negative():
    inv = compute_invoice(
        currency="usd",
        subscription_fee=Decimal(0),
        subscription_label="plan",
        charges=[_signed("-5")],
        committed_minimum=Decimal("100"),
        credit_balance=Decimal(0),
        tax_rate=Decimal(0),
    )
    assert inv.lines[-1].kind == "true_up" and inv.lines[-1].amount == Decimal("105.00")
    assert inv.total == Decimal("100.00")
