"""DRF authentication: ``Authorization: Bearer ty_live_…``."""

from rest_framework import authentication, exceptions

from saas.apikeys.services import InvalidApiKey, api_key_resolve
from saas.common.request_log import bind_organization


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates a program by API key; ``request.auth`` is the :class:`ApiKey`.

    Raises ``AuthenticationFailed`` (401 with ``WWW-Authenticate: Bearer``) for a malformed,
    unknown, expired or revoked key. Returns None when no Bearer header is present, so session
    authentication can try.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("empty bearer token")
        try:
            resolved = api_key_resolve(raw=token)
        except InvalidApiKey as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        # Every later line of the request names the tenant and key (never the secret).
        bind_organization(resolved.api_key.organization_id, api_key_id=resolved.api_key.pk)
        return (ApiKeyUser(resolved.api_key, resolved.creator_role), resolved.api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="trainyard"'


class ApiKeyUser:
    """The principal behind an API key (no human user); ``creator_role`` is the key's
    creator's role in its organisation, read with the key (None: not a member, or no creator)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, api_key, creator_role: str | None = None) -> None:
        self.api_key = api_key
        self.creator_role = creator_role
        self.pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.pk}"
