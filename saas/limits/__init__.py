"""Neutral limits below the domain apps: rate limits (Redis token buckets) and idempotency
records. Nothing here knows HTTP; callers pass plain values (ids, principals, fingerprints)."""
