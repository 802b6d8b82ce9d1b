"""Reads of the usage ledger, tenant-scoped."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

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


def format_quantity(value: Decimal | int | float | str) -> str:
    """A ledger quantity as a plain decimal string: 6 places at most, no exponent."""
    q = Decimal(str(value)).quantize(Decimal("0.000001")).normalize()
    return f"{q:f}"


GROUPS = {"api_key": "api_key_id", "model": "model_id"}


def usage_by_meter_and_day(
    *, organization_id: str, since: datetime | None = None, group_by: str | None = None
) -> list[dict[str, Any]]:
    """``[{"date", "meter", "unit", "quantity"}]`` summed per day (UTC) and meter; with
    ``group_by`` = ``api_key`` or ``model`` also split by that (who or what used it).

    Raises KeyError for another ``group_by``."""
    qs = UsageEvent.objects.for_tenant(organization_id)
    if since is not None:
        qs = qs.filter(occurred_at__gte=since)
    keys = ["date", "meter", "unit"] + ([GROUPS[group_by]] if group_by else [])
    rows = (
        qs.annotate(date=TruncDate("occurred_at"))
        .values(*keys)
        .annotate(quantity=Sum("quantity"))
        .order_by(*keys)
    )
    out = []
    for r in rows:
        row = {
            "date": r["date"].isoformat(),
            "meter": r["meter"],
            "unit": r["unit"],
            "quantity": format_quantity(r["quantity"]),
        }
        if group_by:
            row[group_by] = r[GROUPS[group_by]]
        out.append(row)
    return out


def predictions_per_minute(*, minutes: int = 15, now: datetime | None = None) -> dict[str, float]:
    """Predictions metered across every tenant (operator console): ``last_minute`` and the
    average per minute over the last ``minutes`` (``average``), from the ledger's
    ``predictions`` events by ``occurred_at``. The data plane's windows reach the ledger a few
    seconds after they close, so the last minute can read a little low. Unscoped on purpose:
    only staff pages call it."""
    from django.utils import timezone

    from .models import Meter

    now = now or timezone.now()
    qs = UsageEvent.objects.unscoped_all_tenants().filter(meter=Meter.PREDICTIONS)
    window = qs.filter(occurred_at__gte=now - timedelta(minutes=minutes))
    total = window.aggregate(s=Sum("quantity"))["s"] or 0
    last = (
        window.filter(occurred_at__gte=now - timedelta(minutes=1)).aggregate(s=Sum("quantity"))["s"]
        or 0
    )
    return {"last_minute": float(last), "average": float(total) / minutes}
