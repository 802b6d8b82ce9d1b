"""/v1/api-keys: list, create (the secret is in the create response only), revoke keys, and set
a key's monthly spend cap (``PATCH``, billing managers).

For signed-in users (the dashboard's session): managing keys has no API-key scope, so a
leaked key cannot mint more keys.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from saas.apikeys import selectors as key_selectors
from saas.apikeys import services as key_services
from saas.apikeys.models import SCOPES
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of


class ApiKeyOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())
    created_by = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField()
    monthly_spend_cap = serializers.DecimalField(
        max_digits=14, decimal_places=2, coerce_to_string=True, allow_null=True
    )

    def get_object(self, obj) -> str:
        return "api_key"

    def get_created_by(self, obj) -> str | None:
        return obj.created_by.email if obj.created_by_id else None


class ApiKeyCreateIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=SCOPES), required=False, allow_empty=False
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class ApiKeyListView(TenantAPIView):
    """API keys: developers see and create their own; admins and owners see all. The secret is in the create response only."""

    actions = {"GET": Action.KEYS_READ, "POST": Action.KEYS_MANAGE_OWN}
    idempotency_redact = ("secret",)

    @extend_schema(responses=page_of(ApiKeyOut), parameters=PAGE_PARAMS)
    def get(self, request):
        qs = key_selectors.api_key_list(
            organization_id=self.organization.pk, created_by_id=self.access.keys_created_by
        )
        return self.paginate(qs, ApiKeyOut)

    @extend_schema(request=ApiKeyCreateIn, responses={201: ApiKeyOut})
    def post(self, request):
        ser = ApiKeyCreateIn(data=request.data)
        ser.is_valid(raise_exception=True)
        issued = key_services.api_key_create(
            organization=self.organization,
            name=ser.validated_data["name"],
            scopes=ser.validated_data.get("scopes"),
            created_by=request.user,
            expires_at=ser.validated_data.get("expires_at"),
            actor=self.actor,
        )
        body = {**ApiKeyOut(issued.api_key).data, "secret": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyUpdateIn(serializers.Serializer):
    monthly_spend_cap = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=0,
        allow_null=True,
        help_text="month-to-date charges at which jobs and predictions with this key get 402; "
        "null removes the cap",
    )


class ApiKeyDetailView(TenantAPIView):
    """Set one key's monthly spend cap (owners, admins and the billing role; any key)."""

    actions = {"PATCH": Action.BILLING_MANAGE}

    @extend_schema(request=ApiKeyUpdateIn, responses=ApiKeyOut)
    def patch(self, request, key_id: str):
        # The key first: another tenant's id is a 404 whatever the body holds.
        key = key_selectors.api_key_get(organization_id=self.organization.pk, key_id=key_id)
        ser = ApiKeyUpdateIn(data=request.data)
        ser.is_valid(raise_exception=True)
        key = key_services.api_key_spend_cap_set(
            api_key=key,
            monthly_spend_cap=ser.validated_data["monthly_spend_cap"],
            actor=self.actor,
        )
        body: dict[str, Any] = dict(ApiKeyOut(key).data)
        if not self.access.allows(Action.KEYS_READ):
            # The billing role manages money, not keys: it learns the cap, not the key's details.
            body = {k: body[k] for k in ("id", "object", "monthly_spend_cap")}
        return Response(body)


class ApiKeyRevokeView(TenantAPIView):
    """Revoke a key; its next request gets 401."""

    actions = {"POST": Action.KEYS_MANAGE_OWN}

    @extend_schema(request=None, responses=ApiKeyOut)
    def post(self, request, key_id: str):
        key = key_selectors.api_key_get(
            organization_id=self.organization.pk,
            key_id=key_id,
            created_by_id=self.access.keys_created_by,
        )
        return Response(ApiKeyOut(key_services.api_key_revoke(api_key=key, actor=self.actor)).data)
