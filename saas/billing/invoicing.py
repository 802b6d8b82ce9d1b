"""Invoice arithmetic, as a pure function (property-tested), and nothing else.

Order of an invoice (both business models):

1. subscription fee (SaaS plans), one line;
2. one usage line per meter: ``billable units × unit price``, each rounded once (half-up);
3. a true-up line when the usage lines are below the contract's committed monthly minimum
   (``minimum − usage``, so usage + true-up = minimum exactly at and below the boundary);
4. credit drawdown: ``min(credit balance, subtotal)`` (never below 0), a negative line, the balance being all the
   credit the invoice may draw (a contract's prepaid balance and the credit ledger; credits never go
   below zero and never make the total negative);
5. tax on (subtotal − credit) at the configured rate, rounded once;
6. total = subtotal − credit + tax.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from .pricing import billable_units, minor_unit, round_money


@dataclass(frozen=True)
class MeterCharge:
    meter: str
    quantity: Decimal
    included_units: Decimal
    unit_price: Decimal
    description: str
    signed: bool = False  # a correction: quantity may be negative, no included units


@dataclass
class Line:
    kind: str  # subscription | usage | true_up | credit
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    meter: str = ""


@dataclass
class Computed:
    lines: list[Line] = field(default_factory=list)
    subtotal: Decimal = Decimal(0)
    credit_applied: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    total: Decimal = Decimal(0)
    credit_remaining: Decimal = Decimal(0)


def compute_invoice(
    *,
    currency: str,
    subscription_fee: Decimal,
    subscription_label: str,
    charges: list[MeterCharge],
    committed_minimum: Decimal,
    credit_balance: Decimal,
    tax_rate: Decimal,
    credit_label: str = "Prepaid credit applied",
) -> Computed:
    """Compute an invoice's lines and totals (see the module docstring for the rules).

    Args: amounts are Decimals in ``currency``; ``tax_rate`` is a fraction (0.2 = 20 %);
    ``credit_balance`` ≥ 0 (every credit the invoice may draw, whatever its source);
    ``credit_label`` is the credit line's description.

    Returns a :class:`Computed` whose ``subtotal`` is the sum of the non-credit lines,
    ``total = subtotal - credit_applied + tax`` and ``credit_remaining`` ≥ 0.
    Raises ValueError for a negative credit balance, minimum or tax rate.
    """
    if credit_balance < 0 or committed_minimum < 0 or tax_rate < 0:
        raise ValueError("credit balance, minimum and tax rate must be ≥ 0")
    out = Computed()
    if subscription_fee:
        fee = round_money(subscription_fee, currency)
        out.lines.append(
            Line("subscription", subscription_label, Decimal(1), subscription_fee, fee)
        )
    usage_total = Decimal(0)
    for c in charges:
        units = Decimal(c.quantity) if c.signed else billable_units(c.quantity, c.included_units)
        amount = round_money(units * c.unit_price, currency)
        usage_total += amount
        out.lines.append(Line("usage", c.description, units, c.unit_price, amount, meter=c.meter))
    minimum = round_money(committed_minimum, currency)
    # Only a committed minimum is trued up: without one (self-serve), a month whose usage is
    # negative (a correction) must lower the invoice, not be topped back up to 0.
    if minimum > 0 and minimum > usage_total:
        gap = minimum - usage_total
        out.lines.append(
            Line("true_up", "True-up to the committed monthly minimum", Decimal(1), gap, gap)
        )
    out.subtotal = sum((ln.amount for ln in out.lines), Decimal(0))
    # Round the balance *down*: applying more credit than the customer holds is never right.
    usable = Decimal(credit_balance).quantize(minor_unit(currency), rounding=ROUND_DOWN)
    # Never a negative credit: a subtotal below 0 (corrections beyond the month's charges) is
    # owed to the customer as it stands, and their credit balance stays whole.
    credit = max(Decimal(0), min(usable, out.subtotal))
    if credit > 0:
        out.lines.append(Line("credit", credit_label, Decimal(1), -credit, -credit))
    out.credit_applied = credit
    out.credit_remaining = credit_balance - credit
    out.tax = round_money((out.subtotal - credit) * tax_rate, currency)
    out.total = out.subtotal - credit + out.tax
    return out
