"""Writing to the usage ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .models import Meter, UsageEvent

UNITS = {
    Meter.TRAINING_COMPUTE_SECONDS: "second",
    Meter.TRAINING_EXAMPLES: "example",
    Meter.PREDICTIONS: "prediction",
    Meter.BATCH_PREDICTION_ROWS: "row",
    Meter.STORAGE_GB_HOURS: "GB-hour",
}


def usage_record(
    *,
    organization_id: str,
    meter: Meter,
    quantity: Decimal | int | float,
    occurred_at: datetime,
    source_type: str,
    source_id: str,
    dimensions: dict | None = None,
    api_key_id: str | None = None,
    model_id: str | None = None,
    compute_cost: Decimal | int = 0,
) -> tuple[UsageEvent, bool]:
    """Append one usage event unless the same (organisation, meter, source) exists already.

    Call inside the transaction of the state change it bills for. ``quantity`` is stored as a
    Decimal with 6 decimal places. Returns ``(event, created)``.
    """
    qty = Decimal(str(quantity)).quantize(Decimal("0.000001"))
    return UsageEvent.objects.for_tenant(organization_id).get_or_create(
        organization_id=organization_id,
        meter=meter,
        idempotency_key=f"{source_type}:{source_id}",
        defaults={
            "quantity": qty,
            "unit": UNITS[meter],
            "occurred_at": occurred_at,
            "source_type": source_type,
            "source_id": source_id,
            "dimensions": dimensions or {},
            "api_key_id": api_key_id,
            "model_id": model_id,
            "compute_cost": Decimal(str(compute_cost)),
        },
    )
