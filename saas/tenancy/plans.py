"""Plan limits (until billing makes plans data): rates, running and in-flight training jobs."""

from django.conf import settings


def plan_limits(plan: str) -> dict:
    """The limits of ``plan`` from ``TRAINYARD_PLAN_LIMITS`` (unknown plans get ``free``'s):
    ``requests_per_key``, ``requests_per_organization`` (per rate-limit window),
    ``max_running_jobs``, ``max_active_jobs`` (queued + running)."""
    limits = settings.TRAINYARD_PLAN_LIMITS
    return limits.get(plan) or limits["free"]
