"""``Idempotency-Key`` for POST requests, in the manner of Stripe's API.

The first request with a key claims an in-flight record (a unique row per organisation, route
and key); when it finishes, its status and body are stored. A retry with the same key and the
same request replays the stored response with ``Idempotent-Replayed: true``; the same key with
a different request is a 422; the same key while the first is still running is a 409. A
response of 5xx is not stored (the client may retry). Records are kept 24 h.

A request that ends without a response (any exception, including a worker timeout raised in the
request as ``SystemExit``) releases its key with :func:`idempotency_release`. A holder that
died without running any code (SIGKILL, a lost machine) cannot release it, so the in-flight
state is a lease: after ``TRAINYARD_IDEMPOTENCY_LEASE_SECONDS`` (default 300, longer than any
request may run: gunicorn's timeout) a retry with the same request takes the key over. Requests
never take that long: uploads are refused by their budgets within seconds.

Callers pass the request's fingerprint as a plain string (the API computes it from the parsed
request in ``saas.api.fingerprint``), so nothing here knows HTTP.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from saas.common.errors import Conflict, DomainError, ValidationFailed

from .models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyMismatch(DomainError):
    status = 422
    code = "idempotency-key-reused"
    title = "The Idempotency-Key was used with a different request"


class Replay(Exception):
    """Raised to short-circuit a request with the stored response of its first delivery."""

    def __init__(self, record: IdempotencyRecord) -> None:
        super().__init__(record.key)
        self.record = record


def idempotency_begin(
    *, organization_id: str, route: str, key: str, fingerprint: str
) -> IdempotencyRecord:
    """Claim ``key`` for this request.

    Returns the claimed (in-flight) record. Raises :class:`Replay` (finished before, same
    request), :class:`IdempotencyMismatch` (different request) or Conflict (still in flight and
    its lease, ``TRAINYARD_IDEMPOTENCY_LEASE_SECONDS``, not yet over). An in-flight record whose
    lease is over belonged to a holder that died: it is taken over (its lease renewed) by a
    request with the same fingerprint.
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed(
            "Invalid Idempotency-Key.",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "message": f"1 to {MAX_KEY_LENGTH} printable characters (no control characters)",
                }
            ],
        )
    scoped = IdempotencyRecord.objects.for_tenant(organization_id)
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINYARD_IDEMPOTENCY_TTL_SECONDS)
    scoped.filter(route=route, key=key, created_at__lt=cutoff).delete()
    try:
        with transaction.atomic():
            return scoped.create(
                organization_id=organization_id, route=route, key=key, request_sha256=fingerprint
            )
    except IntegrityError:
        pass
    existing = scoped.filter(route=route, key=key).first()
    if existing is None:  # expired and purged between the two statements: claim again
        return idempotency_begin(
            organization_id=organization_id, route=route, key=key, fingerprint=fingerprint
        )
    if existing.request_sha256 != fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was already used with a different request body; use a new key."
        )
    if existing.response_status is None:
        lease = settings.TRAINYARD_IDEMPOTENCY_LEASE_SECONDS
        now = timezone.now()
        # Conditional update: of two retries racing for an expired lease, one wins.
        taken = scoped.filter(
            pk=existing.pk,
            response_status__isnull=True,
            created_at__lt=now - timedelta(seconds=lease),
        ).update(created_at=now)
        if taken:
            existing.created_at = now
            return existing
        left = lease - (now - existing.created_at).total_seconds()
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry later "
            f"(its claim lapses in {max(1, int(left) + 1)} s if its holder died).",
        )
    raise Replay(existing)


def idempotency_finish(
    *, record: IdempotencyRecord, status: int, body, headers: dict[str, str]
) -> None:
    """Store the response (2xx–4xx), or release the key after a 5xx so a retry can run."""
    scoped = IdempotencyRecord.objects.for_tenant(record.organization_id).filter(pk=record.pk)
    if status >= 500:
        scoped.delete()
        return
    scoped.update(response_status=status, response_body=body, response_headers=headers)


def idempotency_release(*, record: IdempotencyRecord) -> None:
    """Forget an in-flight claim whose request ended without a response (an exception), so
    the client's retry runs instead of a 409. A record that already holds a response is kept."""
    IdempotencyRecord.objects.for_tenant(record.organization_id).filter(
        pk=record.pk, response_status__isnull=True
    ).delete()


def idempotency_purge() -> int:
    """Delete records older than the TTL; returns how many (Celery beat, hourly)."""
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINYARD_IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = (
        IdempotencyRecord.objects.unscoped_all_tenants().filter(created_at__lt=cutoff).delete()
    )
    return deleted
