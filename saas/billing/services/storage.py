"""Storage metering: an hourly sample of each organisation's dataset and model bytes."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from saas.billing.pricing import rate_card_on
from saas.datasets.models import Dataset
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.registry.models import TrainedModel
from saas.tenancy.models import Organization


def storage_sample(*, at: datetime.datetime | None = None) -> int:
    """Record one hour of storage per organisation (meter ``storage_gb_hours``): the bytes of
    live (not deleted) datasets and model artifacts, in GB (10^9 bytes) × 1 hour. Its
    ``compute_cost`` (the operator's cost) is the GB-hours at the rate card's
    ``storage_gb_hour_cost`` in force that day. Idempotent per hour (the hour is the usage
    event's source). Run hourly by Celery beat; returns events written."""
    hour = (at or timezone.now()).replace(minute=0, second=0, microsecond=0)
    card = rate_card_on(hour.date())
    rate = card.storage_gb_hour_cost if card is not None else Decimal(0)
    written = 0
    for org in Organization.objects.all():
        data = (
            Dataset.objects.for_tenant(org)
            .exclude(status="deleted")
            .aggregate(b=Sum("size_bytes"))["b"]
            or 0
        )
        models_ = (
            TrainedModel.objects.for_tenant(org)
            .filter(deleted_at__isnull=True)  # a deleted model's artifact is gone: not billed
            .aggregate(b=Sum("artifact_bytes"))["b"]
            or 0
        )
        total = data + models_
        if not total:
            continue
        # As the ledger stores it (6 places), so cost = quantity × rate exactly.
        gb_hours = (Decimal(total) / Decimal(10**9)).quantize(Decimal("0.000001"))
        with transaction.atomic():
            _, created = usage_record(
                organization_id=org.pk,
                meter=Meter.STORAGE_GB_HOURS,
                quantity=gb_hours,
                compute_cost=(gb_hours * rate).quantize(Decimal("0.00000001")),
                occurred_at=hour,
                source_type="storage_sample",
                source_id=f"{org.pk}:{hour:%Y-%m-%dT%H}",
                dimensions={"dataset_bytes": data, "model_bytes": models_},
            )
        written += int(created)
    return written
