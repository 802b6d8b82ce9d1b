"""Throttles for the doors anyone may knock on: sign-in, sign-up and password reset.

Two mechanisms, each doing what it is good at:

- django-axes counts failed sign-ins per account and locks the account out for a while
  (``AXES_*`` settings); :func:`axes_username` and :func:`axes_client_ip` tell it how this
  project names an account (the email, any letter case) and a client (behind
  ``TRAINYARD_TRUSTED_PROXIES`` proxies).
- :func:`auth_attempt_take` limits submissions per client address, and password-reset emails
  per target address, with the token buckets of :mod:`saas.limits.ratelimit` (Redis).
"""

from __future__ import annotations

import hashlib

from django.conf import settings

from saas.common.actor import client_ip
from saas.common.redact import redact_path

from .ratelimit import Decision, rate_limit_take

SCOPES = ("login", "signup", "password_reset")


def axes_username(request, credentials: dict | None) -> str:
    """The account a sign-in attempt is for, as django-axes counts it: the submitted email,
    stripped and lower-cased (``Ada@X.test`` and ``ada@x.test`` are one account)."""
    raw = (credentials or {}).get("username")
    if raw is None and request is not None:
        raw = request.POST.get("username", "")
    return str(raw or "").strip().lower()


def axes_client_ip(request) -> str:
    """The client address django-axes records: the same rule as the rate limits and the audit
    log (``saas.common.actor.client_ip``)."""
    return client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES) or ""


def axes_client_str(username, ip_address, user_agent, path_info, request) -> str:
    """How django-axes names a client in its log lines (``AXES_CLIENT_STR_CALLABLE``): the
    address and the path, redacted, never the email. Its default writes the raw path, which for
    a sign-in made by confirming a sign-up (``/signup/confirm/<uid>/<token>``) is a secret."""
    if isinstance(path_info, tuple | list):
        path_info = path_info[0] if path_info else ""
    return f'{{ip_address: "{ip_address}", path_info: "{redact_path(str(path_info or ""))}"}}'


def _email_key(email: str) -> str:
    # A digest, not the address: Redis keys show up in monitoring and dumps.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def auth_attempt_take(*, scope: str, request) -> Decision | None:
    """Take one of the client address's ``TRAINYARD_AUTH_ATTEMPTS_PER_IP`` submissions of
    ``scope`` (one of :data:`SCOPES`) per ``TRAINYARD_AUTH_WINDOW_SECONDS``. Returns the
    decision (``allowed`` False: refuse with 429 and ``Retry-After``), or None when limits are
    off (no Redis). Raises ValueError for an unknown scope."""
    if scope not in SCOPES:
        raise ValueError(f"unknown throttle scope {scope!r}")
    ip = client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES) or "unknown"
    return rate_limit_take(
        key=f"auth:{scope}:ip:{ip}",
        capacity=settings.TRAINYARD_AUTH_ATTEMPTS_PER_IP,
        window_seconds=settings.TRAINYARD_AUTH_WINDOW_SECONDS,
    )


def password_reset_email_allowed(*, email: str) -> bool:
    """True if another password-reset email may go to ``email`` in this window (at most
    ``TRAINYARD_PASSWORD_RESETS_PER_EMAIL``), so the form cannot be used to flood someone's
    inbox from many addresses. True when limits are off."""
    decision = rate_limit_take(
        key=f"auth:reset-email:{_email_key(email)}",
        capacity=settings.TRAINYARD_PASSWORD_RESETS_PER_EMAIL,
        window_seconds=settings.TRAINYARD_AUTH_WINDOW_SECONDS,
    )
    return decision is None or decision.allowed
