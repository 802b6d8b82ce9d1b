"""Who is acting: recorded with every state change (audit log, created_by fields)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Actor:
    """The principal behind a request: a signed-in user or an API key, and the client IP."""

    user_id: int | None = None
    api_key_id: str | None = None
    ip: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls()

    @classmethod
    def for_user(cls, request, user) -> Actor:
        """A signed-in ``user`` acting through ``request`` (IP per ``TRAINYARD_TRUSTED_PROXIES``)."""
        return cls(user_id=user.pk, ip=client_ip(request, settings.TRAINYARD_TRUSTED_PROXIES))


def client_ip(request, trusted_proxies: int) -> str | None:
    """The client's IP: ``REMOTE_ADDR``, or with ``trusted_proxies`` = N > 0 the N-th address
    from the right of ``X-Forwarded-For`` (each trusted proxy appends the address it saw; any
    addresses further left are client-supplied and ignored)."""
    remote = request.META.get("REMOTE_ADDR")
    if trusted_proxies <= 0:
        return remote
    chain = [
        p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()
    ]
    if len(chain) >= trusted_proxies:
        return chain[-trusted_proxies]
    return chain[0] if chain else remote


# The staff user behind a support session (django-hijack) for the request being served, set by
# saas.console.middleware. A context variable rather than an Actor field because actors are
# built in many places (dashboard, API access, console) and every one of them must carry it.
current_impersonator: ContextVar[int | None] = ContextVar("current_impersonator", default=None)
