"""Writing to the usage ledger: append-only, one row per (organisation, meter, source).

``usage_record`` is called inside the transaction of the state change it bills for (a job
finishing, a prediction answered), which records who caused it; so it takes no actor of its
own. A correction is a change of its own and takes and audits an ``actor``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from saas.common.actor import Actor
from saas.tenancy.audit import audit_record

from .models import Meter, UsageEvent

UNITS: dict[str, str] = {
    Meter.TRAINING_COMPUTE_SECONDS: "second",
    Meter.TRAINING_GPU_SECONDS: "second",
    Meter.TRAINING_EXAMPLES: "example",
    Meter.PREDICTIONS: "prediction",
    Meter.BATCH_PREDICTION_ROWS: "row",
    Meter.STORAGE_GB_HOURS: "GB-hour",
}


def usage_record(
    *,
    organization_id: str,
    meter: Meter | str,
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


def usage_correct(*, event: UsageEvent, quantity: Decimal, reason: str, actor: Actor) -> UsageEvent:
    """Correct a usage event by appending a new one (never by editing it).

    ``quantity`` is the signed adjustment (e.g. ``-event.quantity`` to cancel it in full); the
    correction references the original as its source and carries ``reason``. Raises ValueError
    for an empty reason, a zero adjustment, or one that would take the total below zero.
    Audited as ``usage.corrected`` with ``actor``.
    """
    if not reason.strip():
        raise ValueError("a correction needs a reason")
    quantity = Decimal(str(quantity))
    if quantity == 0:
        raise ValueError("a correction must change the quantity")
    with transaction.atomic():
        scoped = UsageEvent.objects.for_tenant(event.organization_id)
        scoped.select_for_update().filter(pk=event.pk).first()  # corrections of one event queue up
        already = scoped.filter(
            source_type="correction", source_id__startswith=f"{event.pk}:"
        ).aggregate(q=Sum("quantity"))["q"] or Decimal(0)
        if event.quantity + already + quantity < 0:
            raise ValueError("the correction would make the usage negative")
        n = (
            scoped.filter(source_type="correction", source_id__startswith=f"{event.pk}:").count()
            + 1
        )
        corrected, _ = usage_record(
            organization_id=event.organization_id,
            meter=event.meter,
            quantity=quantity,
            occurred_at=event.occurred_at if quantity < 0 else timezone.now(),
            source_type="correction",
            source_id=f"{event.pk}:{n}",
            dimensions={"corrects": event.pk},
            api_key_id=event.api_key_id,
            model_id=event.model_id,
        )
        UsageEvent.objects.for_tenant(event.organization_id).filter(pk=corrected.pk).update(
            reason=reason[:200]
        )
        audit_record(
            organization_id=event.organization_id,
            action="usage.corrected",
            actor=actor,
            target_type="usage_event",
            target_id=event.pk,
            quantity=str(quantity),
            reason=reason,
        )
    corrected.reason = reason[:200]
    return corrected
