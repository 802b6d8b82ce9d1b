"""The one base class every /v1 endpoint uses: tenant resolution, scope checks, pagination.

It resolves the organisation from the API key (``request.auth``) or, for a logged-in user,
from the session's current organisation, checks the key's scope for the HTTP method, and puts
``self.organization`` in place before the handler runs. Subclasses declare ``scopes`` per
method and never build their own querysets: they call tenant-scoped selectors.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from rest_framework import exceptions
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from saas.apikeys.models import ApiKey
from saas.tenancy.models import Membership, Organization


class ListPagination(CursorPagination):
    """Cursor pagination: ``{"object": "list", "data": [...], "next_cursor": str | null}``.

    ``?limit=`` (default 20, at most 100) and ``?cursor=`` (the previous page's next_cursor).
    """

    page_size = 20
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created_at", "-pk")

    def get_paginated_response(self, data):
        next_link = self.get_next_link()
        cursor = parse_qs(urlparse(next_link).query).get("cursor", [None])[0] if next_link else None
        return Response({"object": "list", "data": data, "next_cursor": cursor})

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": schema,
                "next_cursor": {"type": "string", "nullable": True},
            },
        }


class TenantAPIView(APIView):
    """Base for tenant-owned endpoints. Set ``scopes = {"GET": "datasets:read", ...}``."""

    scopes: dict[str, str] = {}
    organization: Organization
    api_key: ApiKey | None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication + IsAuthenticated
        if isinstance(request.auth, ApiKey):
            self.api_key = request.auth
            self.organization = request.auth.organization
            needed = self.scopes.get(request.method) or self.scopes.get(
                "GET" if request.method in ("HEAD", "OPTIONS") else ""
            )
            if needed and needed not in request.auth.scopes:
                raise exceptions.PermissionDenied(f"This API key lacks the '{needed}' scope.")
        else:
            self.api_key = None
            self.organization = self._session_organization(request)

    def _session_organization(self, request) -> Organization:
        memberships = Membership.objects.filter(user=request.user).select_related("organization")
        wanted = request.session.get("organization_id")
        chosen = next((m for m in memberships if m.organization_id == wanted), None) or next(
            iter(memberships), None
        )
        if chosen is None:
            raise exceptions.PermissionDenied("You are not a member of any organisation.")
        return chosen.organization

    def paginate(self, queryset, serializer_class) -> Response:
        paginator = ListPagination()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(page, many=True).data)
