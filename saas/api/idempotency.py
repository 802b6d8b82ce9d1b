"""``Idempotency-Key`` for POST requests, in the manner of Stripe's API.

The first request with a key claims an in-flight record (a unique row per organisation, route
and key); when it finishes, its status and body are stored. A retry with the same key and the
same request replays the stored response with ``Idempotent-Replayed: true``; the same key with
a different request is a 422; the same key while the first is still running is a 409. A
response of 5xx is not stored (the client may retry). Records are kept 24 h.

The request fingerprint is the SHA-256 of the parsed request: JSON canonicalised (sorted keys),
multipart form fields plus each file's SHA-256 — so a client's random multipart boundary does
not change it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from saas.common.errors import Conflict, DomainError

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


def request_fingerprint(request) -> str:
    """SHA-256 (hex) of the method, path and parsed body of a DRF request."""
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    data = request.data
    if hasattr(data, "lists"):  # QueryDict (multipart / form)
        fields = {k: v for k, v in data.lists() if k not in request.FILES}
        digest.update(json.dumps(fields, sort_keys=True, default=str).encode())
        for name in sorted(request.FILES):
            for f in request.FILES.getlist(name):
                h = hashlib.sha256()
                for chunk in f.chunks():
                    h.update(chunk)
                f.seek(0)
                digest.update(f"{name}:{f.name}:{h.hexdigest()}\n".encode())
    else:
        digest.update(json.dumps(data, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def idempotency_begin(
    *, organization_id: str, route: str, key: str, fingerprint: str
) -> IdempotencyRecord:
    """Claim ``key`` for this request. Raises :class:`Replay` (finished before, same request),
    :class:`IdempotencyMismatch` (different request) or Conflict (still in flight)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        from saas.common.errors import ValidationFailed

        raise ValidationFailed(
            "Invalid Idempotency-Key.",
            errors=[{"field": "Idempotency-Key", "message": f"1 to {MAX_KEY_LENGTH} characters"}],
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
        raise Conflict("A request with this Idempotency-Key is still being processed; retry later.")
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


def idempotency_purge() -> int:
    """Delete records older than the TTL; returns how many (Celery beat, hourly)."""
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINYARD_IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = (
        IdempotencyRecord.objects.unscoped_all_tenants().filter(created_at__lt=cutoff).delete()
    )
    return deleted
