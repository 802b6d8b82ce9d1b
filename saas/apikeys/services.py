"""Creating and checking API keys.

Format: ``ty_live_`` + a 12-character public id + ``_`` + 43 characters of URL-safe base64
(32 random bytes). Keys are high-entropy, so a fast SHA-256 digest is the right storage (a slow
password hash would add ~100 ms to every request for no gain); lookup is by the public id and
the digest is compared in constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from saas.accounts.models import User
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.common.ttlcache import TTLCache
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization
from saas.tenancy.selectors import membership_role_subquery

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

    ``expires_at`` (an aware datetime) must lie in the future: a key that is born expired
    would be refused on every request, so it is refused here instead.

    Raises ``ValueError`` for an unknown scope, :class:`ValidationFailed` (400, field
    ``expires_at``) for an expiry at or before now. Records ``api_key.created`` in the audit log.
    """
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed(
            "The expiry is in the past.",
            errors=[{"field": "expires_at", "message": "choose a time in the future (UTC)"}],
        )
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
def api_key_revoke(*, api_key: ApiKey, actor: Actor, reason: str = "") -> ApiKey:
    """Revoke a key; requests with it get 401 within 1 s (``TRAINYARD_REQUEST_CACHE_SECONDS``:
    how long a web process trusts a key it has read). Revoking twice is a no-op (and is not
    audited again). ``actor`` is recorded with ``api_key.revoked``, and ``reason`` (an
    operator's, from the console) with it."""
    scoped = ApiKey.objects.for_tenant(api_key.organization_id).filter(pk=api_key.pk)
    if scoped.filter(revoked_at__isnull=True).update(revoked_at=timezone.now()):
        audit_record(
            organization_id=api_key.organization_id,
            action="api_key.revoked",
            actor=actor,
            target_type="api_key",
            target_id=api_key.pk,
            name=api_key.name,
            **({"reason": reason} if reason else {}),
        )
    return scoped.get()


@dataclass(frozen=True)
class ResolvedKey:
    """An authenticated API key as the request path needs it.

    Attributes:
        api_key: the key, with its ``organization`` loaded (this request's own copies: a
            caller may not change the cached originals).
        creator_role: the key's creator's current role in the key's organisation (None when
            the creator is no longer a member, or the key was made on the command line).
    """

    api_key: ApiKey
    creator_role: str | None


# public id -> the key row with its organisation and its creator's role, trusted for at most
# TRAINYARD_REQUEST_CACHE_SECONDS (≤ 1 s, see saas.common.ttlcache): so a key revoked, expired, or
# whose creator was demoted or removed, or whose organisation was suspended, is refused (or
# narrowed) by every web process within 1 s, while a steady stream of requests with one key
# costs one query per process per second instead of two per request.
_resolved_keys: TTLCache[str, ResolvedKey] = TTLCache()


def _load_resolved(public_id: str) -> ResolvedKey | None:
    key = (
        ApiKey.objects.unscoped_all_tenants()  # authentication is what finds the tenant
        .select_related("organization")
        .annotate(
            creator_role=membership_role_subquery(
                organization_field="organization_id", user_field="created_by_id"
            )
        )
        .filter(public_id=public_id)
        .first()
    )
    if key is None:
        return None
    return ResolvedKey(api_key=key, creator_role=key.creator_role)


def api_key_resolve(*, raw: str) -> ResolvedKey:
    """Return the active key matching ``raw`` (and its creator's role) or raise
    :class:`InvalidApiKey`.

    The row is read at most once per ``TRAINYARD_REQUEST_CACHE_SECONDS`` (≤ 1 s) per process and
    key (one query: key, organisation and role together); the secret's digest is checked on
    every call, in constant time. Writes ``last_used_at`` at most once a minute per key
    (one conditional UPDATE, a no-op if another process just did it).
    """
    if not raw.startswith(KEY_PREFIX):
        raise InvalidApiKey("malformed API key")
    body = raw[len(KEY_PREFIX) :]
    public_id, sep, _ = body.partition("_")
    if not sep or len(public_id) != 12:
        raise InvalidApiKey("malformed API key")
    cached = _resolved_keys.get(public_id, lambda: _load_resolved(public_id))
    # Compare against a dummy digest when the id is unknown so timing does not reveal it.
    expected = cached.api_key.secret_sha256 if cached else "0" * 64
    if not hmac.compare_digest(expected, _digest(raw)) or cached is None:
        raise InvalidApiKey("invalid API key")
    key = cached.api_key
    now = timezone.now()
    if key.revoked_at is not None:
        raise InvalidApiKey("API key revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise InvalidApiKey("API key expired")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.for_tenant(key.organization_id).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION),
            pk=key.pk,
        ).update(last_used_at=now)
        key.last_used_at = now  # the cached row too: the next write is a minute away
    # Copies (Django copies the related-object cache with the instance), so nothing a request
    # does to its key or organisation reaches the cache.
    own = copy.copy(key)
    own.organization = copy.copy(key.organization)
    return ResolvedKey(api_key=own, creator_role=cached.creator_role)


def api_key_authenticate(*, raw: str) -> ApiKey:
    """Return the active key matching ``raw`` or raise :class:`InvalidApiKey` (see
    :func:`api_key_resolve`, of which this is the key alone)."""
    return api_key_resolve(raw=raw).api_key
