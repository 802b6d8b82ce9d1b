"""Tenancy tests: each starts with full rate-limit buckets."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Each test starts with full buckets (rate-limit state lives in Redis)."""
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for k in r.scan_iter("rl:*"):
        r.delete(k)
