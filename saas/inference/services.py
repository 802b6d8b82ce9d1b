"""Online predictions' bookkeeping on the control-plane side: the data plane (``serve``)
answers them; this turns its metering windows into ledger rows (``saas.metering.windows``)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import redis
from django.conf import settings
from django.utils import timezone

from saas.billing import pricing
from saas.metering.windows import usage_windows_flush


@lru_cache(maxsize=1)
def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


def prediction_windows_flush() -> int:
    """Write every closed prediction window to the ledger, exactly once (any number of
    callers may run it at once: each ``serve`` replica every second, and Celery beat).
    ``compute_cost`` is the model execution time at the rate card's CPU price. Returns the
    usage events written; a no-op without ``REDIS_URL``."""
    if not settings.REDIS_URL:
        return 0
    card = pricing.rate_card_on(timezone.now().date())
    return usage_windows_flush(
        redis_client=_client(),
        cpu_second_cost=card.cpu_second_cost if card is not None else Decimal(0),
    )
