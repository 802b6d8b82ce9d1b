"""Reads of the usage ledger, tenant-scoped."""

from decimal import Decimal

from django.db.models import Sum
from django.db.models.functions import TruncDate

from .models import UsageEvent


def usage_for_source(*, organization_id: str, source_type: str, source_id: str) -> list[dict]:
    """The usage events one job or request wrote: ``[{"meter", "quantity", "unit"}]``."""
    rows = (
        UsageEvent.objects.for_tenant(organization_id)
        .filter(source_type=source_type, source_id=source_id)
        .order_by("meter")
        .values("meter", "quantity", "unit", "dimensions")
    )
    return [{**r, "quantity": format_quantity(r["quantity"])} for r in rows]


def format_quantity(value) -> str:
    """A ledger quantity as a plain decimal string: 6 places at most, no exponent."""
    q = Decimal(str(value)).quantize(Decimal("0.000001")).normalize()
    return f"{q:f}"


def usage_by_meter_and_day(*, organization_id: str, since=None) -> list[dict]:
    """``[{"date", "meter", "unit", "quantity"}]`` summed per day (UTC) and meter."""
    qs = UsageEvent.objects.for_tenant(organization_id)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    rows = (
        qs.annotate(date=TruncDate("occurred_at"))
        .values("date", "meter", "unit")
        .annotate(quantity=Sum("quantity"))
        .order_by("date", "meter")
    )
    return [
        {**r, "date": r["date"].isoformat(), "quantity": format_quantity(r["quantity"])}
        for r in rows
    ]
