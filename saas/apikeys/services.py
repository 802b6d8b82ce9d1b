"""Creating and checking API keys.

Format: ``ty_live_`` + a 12-character public id + ``_`` + 43 characters of URL-safe base64
(32 random bytes). Keys are high-entropy, so a fast SHA-256 digest is the right storage (a slow
password hash would add ~100 ms to every request for no gain); lookup is by the public id and
the digest is compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from saas.accounts.models import User
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .models import SCOPES, ApiKey

KEY_PREFIX = "ty_live_"
_PUBLIC_ALPHABET = string.ascii_lowercase + string.digits
LAST_USED_RESOLUTION = timedelta(minutes=1)


class InvalidApiKey(Exception):
    """The presented key is malformed, unknown, expired or revoked (the reason is in args)."""


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # the whole key, shown once


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    name: str = "default",
    scopes: list[str] | None = None,
    created_by: User | None = None,
    expires_at: datetime | None = None,
    actor: Actor,
) -> IssuedKey:
    """Issue a key for ``organization``. ``scopes`` defaults to every scope. ``actor`` (the
    user or key doing it, or ``Actor.system()`` on the command line) goes in the audit log.

    Raises ``ValueError`` for an unknown scope. Records ``api_key.created`` in the audit log.
    """
    scopes = list(scopes) if scopes is not None else list(SCOPES)
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)}")
    public_id = "".join(secrets.choice(_PUBLIC_ALPHABET) for _ in range(12))
    secret_part = secrets.token_urlsafe(32)
    full = f"{KEY_PREFIX}{public_id}_{secret_part}"
    key = ApiKey.objects.for_tenant(organization).create(
        organization=organization,
        name=name,
        public_id=public_id,
        secret_sha256=_digest(full),
        scopes=scopes,
        created_by=created_by,
        expires_at=expires_at,
    )
    audit_record(
        organization_id=organization.pk,
        action="api_key.created",
        actor=actor,
        target_type="api_key",
        target_id=key.pk,
        name=name,
        scopes=scopes,
    )
    return IssuedKey(api_key=key, secret=full)


@transaction.atomic
def api_key_spend_cap_set(
    *, api_key: ApiKey, monthly_spend_cap: Decimal | None, actor: Actor
) -> ApiKey:
    """Set (or with None, remove) the key's monthly spend cap, in the organisation's billing
    currency; jobs and predictions made with the key are refused (402) once its month-to-date
    charges reach it. Audited as ``api_key.spend_cap_changed`` with the old and new values.

    Raises ValidationFailed for a negative cap or one with more than 2 decimal places.
    """
    if monthly_spend_cap is not None and (
        monthly_spend_cap < 0 or monthly_spend_cap != monthly_spend_cap.quantize(Decimal("0.01"))
    ):
        raise ValidationFailed(
            "Invalid spend cap.",
            errors=[
                {"field": "monthly_spend_cap", "message": "an amount ≥ 0 with at most 2 decimals"}
            ],
        )
    scoped = ApiKey.objects.for_tenant(api_key.organization_id).select_for_update()
    current = scoped.get(pk=api_key.pk)
    if current.monthly_spend_cap != monthly_spend_cap:
        scoped.filter(pk=api_key.pk).update(monthly_spend_cap=monthly_spend_cap)
        audit_record(
            organization_id=api_key.organization_id,
            action="api_key.spend_cap_changed",
            actor=actor,
            target_type="api_key",
            target_id=api_key.pk,
            old=None if current.monthly_spend_cap is None else str(current.monthly_spend_cap),
            new=None if monthly_spend_cap is None else str(monthly_spend_cap),
        )
    return ApiKey.objects.for_tenant(api_key.organization_id).get(pk=api_key.pk)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: Actor) -> ApiKey:
    """Revoke a key; the next request with it gets 401. Revoking twice is a no-op (and is not
    audited again). ``actor`` is recorded with ``api_key.revoked``."""
    scoped = ApiKey.objects.for_tenant(api_key.organization_id).filter(pk=api_key.pk)
    if scoped.filter(revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(
            organization_id=api_key.organization_id,
            action="api_key.revoked",
            actor=actor,
            target_type="api_key",
            target_id=api_key.pk,
            name=api_key.name,
        )
    return scoped.get()


def api_key_authenticate(*, raw: str) -> ApiKey:
    """Return the active key matching ``raw`` or raise :class:`InvalidApiKey`.

    Updates ``last_used_at`` at most once a minute per key (one conditional UPDATE).
    """
    if not raw.startswith(KEY_PREFIX):
        raise InvalidApiKey("malformed API key")
    body = raw[len(KEY_PREFIX) :]
    public_id, sep, _ = body.partition("_")
    if not sep or len(public_id) != 12:
        raise InvalidApiKey("malformed API key")
    key = (
        ApiKey.objects.unscoped_all_tenants()  # authentication is what finds the tenant
        .select_related("organization")
        .filter(public_id=public_id)
        .first()
    )
    # Compare against a dummy digest when the id is unknown so timing does not reveal it.
    expected = key.secret_sha256 if key else "0" * 64
    if not hmac.compare_digest(expected, _digest(raw)) or key is None:
        raise InvalidApiKey("invalid API key")
    now = timezone.now()
    if key.revoked_at is not None:
        raise InvalidApiKey("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidApiKey("API key expired")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.for_tenant(key.organization_id).filter(pk=key.pk).update(last_used_at=now)
    return key
