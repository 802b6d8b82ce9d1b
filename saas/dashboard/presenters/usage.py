"""The billing page's usage: meter totals, the share of the spend cap, one daily series per
meter (drawn by :mod:`saas.dashboard.charts`).

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from ..templatetags.dashboard import meter_label


def quantity_total(values: Iterable[float]) -> Decimal:
    """The sum of a meter's daily quantities as a normalised ``Decimal`` (``12.50`` → ``12.5``,
    ``0`` → ``0``), built from the float's shortest ``repr``, not its exact binary value.

    ``normalize`` drops the trailing zeros of whole numbers too (``120`` is
    ``Decimal("1.2E+2")``); Django's templates localise a ``Decimal`` in fixed point, so the
    page still shows ``120``. Format it with ``{:f}`` anywhere else.
    """
    return Decimal(str(sum(values))).normalize()


def cap_percent(total: Decimal, cap: Decimal | None) -> int | None:
    """How much of the monthly spend cap this period's ``total`` uses, in whole percent (0–100,
    truncated); ``None`` when there is no cap or it is zero (nothing to measure against)."""
    if not cap:
        return None
    return min(100, int(total * 100 / cap))


def days_between(start: datetime.date, end: datetime.date) -> list[str]:
    """ISO dates from ``start`` to ``end`` inclusive (empty when ``end`` is before ``start``)."""
    return [(start + datetime.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def usage_series(
    rows: Iterable[Mapping[str, Any]], *, start: datetime.date, today: datetime.date
) -> list[dict[str, Any]]:
    """Usage per meter and day, one series per meter for the billing page's charts.

    Args:
        rows: ``[{"meter", "unit", "date": ISO date, "quantity": number}]`` (as
            ``usage_by_meter_and_day`` returns them); rows dated outside ``start..today`` are
            ignored, several rows of one meter and day are added up.
        start: the first day of the period (UTC).
        today: the last day shown (UTC).

    Returns:
        ``[{"meter", "unit", "title", "days", "values", "total", "rows"}]`` sorted by meter:
        ``days`` every ISO date from ``start`` to ``today``, ``values`` the float quantity of
        each day (0.0 when nothing was used), ``total`` their sum as a ``Decimal``, ``rows``
        ``[(day, quantity)]`` for the days with usage (the chart's table), ``title`` the
        chart's title. A meter appears only when it has at least one row.
    """
    days = days_between(start, today)
    by_meter: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = by_meter.setdefault(r["meter"], {"unit": r["unit"], "values": dict.fromkeys(days, 0.0)})
        if r["date"] in m["values"]:
            m["values"][r["date"]] += float(r["quantity"])
    out = []
    for meter, m in sorted(by_meter.items()):
        values = [m["values"][d] for d in days]
        out.append(
            {
                "meter": meter,
                "unit": m["unit"],
                "title": f"{meter_label(meter)} per day",
                "days": days,
                "values": values,
                "total": quantity_total(values),
                "rows": [(d, v) for d, v in zip(days, values, strict=True) if v],
            }
        )
    return out
