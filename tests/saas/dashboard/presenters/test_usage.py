"""The usage presenters (totals, the spend cap, daily series for the billing page): plain values
in, plain values out, no database."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.template import Context, Template

from saas.dashboard import presenters as p


def test_quantity_total():
    assert p.quantity_total([]) == Decimal("0")
    assert str(p.quantity_total([0.0, 0.0])) == "0"
    assert str(p.quantity_total([1.25, 1.25])) == "2.5"
    assert str(p.quantity_total([0.5])) == "0.5"
    # The float's shortest repr, not its binary expansion.
    assert p.quantity_total([0.1]) == Decimal("0.1")
    assert p.quantity_total([120.0]) == Decimal(120)


def test_a_whole_quantity_total_prints_in_fixed_point_on_a_page():
    # normalize() makes 120 into 1.2E+2; the billing page must still read "120".
    total = p.quantity_total([100.0, 20.0])
    assert Template("{{ t }} unit{{ t|pluralize }}").render(Context({"t": total})) == "120 units"


@pytest.mark.parametrize(
    ("total", "cap", "percent"),
    [
        (Decimal("5"), None, None),
        (Decimal("5"), Decimal("0"), None),
        (Decimal("0"), Decimal("10"), 0),
        (Decimal("2.50"), Decimal("10"), 25),
        (Decimal("9.99"), Decimal("10"), 99),  # truncated, never rounded up to "full"
        (Decimal("10"), Decimal("10"), 100),
        (Decimal("35"), Decimal("10"), 100),
    ],
)
def test_cap_percent(total, cap, percent):
    assert p.cap_percent(total, cap) == percent


START = datetime.date(2026, 3, 1)


def test_days_between_is_inclusive():
    assert p.days_between(START, START) == ["2026-03-01"]
    assert p.days_between(START, datetime.date(2026, 3, 3)) == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    assert p.days_between(START, datetime.date(2026, 2, 28)) == []


def test_usage_series_with_zero_usage_is_empty():
    assert p.usage_series([], start=START, today=datetime.date(2026, 3, 10)) == []


def test_usage_series_one_series_per_meter_with_every_day():
    rows = [
        {"meter": "predictions", "unit": "prediction", "date": "2026-03-02", "quantity": 3},
        {"meter": "predictions", "unit": "prediction", "date": "2026-03-02", "quantity": 2},
        {"meter": "predictions", "unit": "prediction", "date": "2026-02-28", "quantity": 99},
        {
            "meter": "storage_gb_hours",
            "unit": "GB-hour",
            "date": "2026-03-01",
            "quantity": Decimal("0.125"),
        },
        {"meter": "a_new_meter", "unit": "thing", "date": "2026-03-03", "quantity": 0},
    ]
    out = p.usage_series(rows, start=START, today=datetime.date(2026, 3, 3))
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert out == [
        {
            "meter": "a_new_meter",
            "unit": "thing",
            "title": "a_new_meter per day",  # an unknown meter keeps its code
            "days": days,
            "values": [0.0, 0.0, 0.0],
            "total": Decimal("0"),
            "rows": [],
        },
        {
            "meter": "predictions",
            "unit": "prediction",
            "title": "Predictions per day",
            "days": days,
            "values": [0.0, 5.0, 0.0],  # same day added up; the day before the period ignored
            "total": Decimal("5"),
            "rows": [("2026-03-02", 5.0)],
        },
        {
            "meter": "storage_gb_hours",
            "unit": "GB-hour",
            "title": "Storage (GB-hours) per day",
            "days": days,
            "values": [0.125, 0.0, 0.0],
            "total": Decimal("0.125"),
            "rows": [("2026-03-01", 0.125)],
        },
    ]
