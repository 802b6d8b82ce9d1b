"""Online predictions' bookkeeping on the control-plane side: the data plane (``serve``)
answers them; this turns its metering windows into ledger rows (``saas.metering.windows``)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import redis
from django.conf import settings
from django.utils import timezone

from saas.billing import pricing
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.metering.windows import usage_windows_flush


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


def prediction_windows_flush() -> int:
    """Write every closed prediction window to the ledger, exactly once (any number of
    callers may run it at once: each ``serve`` replica every second, and Celery beat).
    ``compute_cost`` is the executions' CPU seconds (``serve.cpumeter``) at the rate card's CPU
    price. Returns the usage events written; a no-op without ``REDIS_URL``."""
    if not settings.REDIS_URL:
        return 0
    card = pricing.rate_card_on(timezone.now().date())
    return usage_windows_flush(
        redis_client=_client(),
        cpu_second_cost=card.cpu_second_cost if card is not None else Decimal(0),
    )


def prediction_usage_record(
    *,
    organization_id: str,
    principal: str,
    model_id: str,
    inputs: int,
    micros: int,
    prediction_id: str,
) -> bool:
    """Write one answered request straight to the ledger (``prediction:<id>``): the data
    plane's fallback when Redis refused its metering commit after the answer was sent, so the
    count is not lost. Returns whether a row was written (False: it was already there)."""
    card = pricing.rate_card_on(timezone.now().date())
    cpu_seconds = Decimal(micros) / Decimal(1_000_000)
    _event, created = usage_record(
        organization_id=organization_id,
        meter=Meter.PREDICTIONS,
        quantity=inputs,
        occurred_at=timezone.now(),
        source_type="prediction",
        source_id=prediction_id,
        dimensions={"requests": 1, "cpu_seconds": float(cpu_seconds), "principal": principal},
        api_key_id=principal if principal.startswith("key_") else None,
        model_id=model_id,
        compute_cost=(cpu_seconds * (card.cpu_second_cost if card else Decimal(0))).quantize(
            Decimal("0.00000001")
        ),
    )
    return created
