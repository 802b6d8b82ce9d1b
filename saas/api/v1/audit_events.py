"""/v1/audit-events: the organisation's audit log (owners and admins).

For signed-in users (the dashboard's session): reading the audit log has no API-key scope.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of


class AuditEventOut(serializers.Serializer):
    id = serializers.IntegerField()
    object = serializers.SerializerMethodField()
    action = serializers.CharField()
    actor = serializers.SerializerMethodField()
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this does not shadow .data.
    data = serializers.JSONField()  # type: ignore[assignment]
    ip = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "audit_event"

    def get_actor(self, obj) -> dict:
        return {
            "user": obj.actor_user.email if obj.actor_user_id else None,
            "api_key": obj.actor_api_key_id,
        }


class AuditEventListView(TenantAPIView):
    """The audit log (owners and admins): who did what, when, from which key or session and IP."""

    actions = {"GET": Action.AUDIT_READ}

    @extend_schema(responses=page_of(AuditEventOut), parameters=PAGE_PARAMS)
    def get(self, request):
        events = tenancy_selectors.audit_event_list(
            organization=self.organization, action=request.query_params.get("action") or None
        )
        return self.paginate(events, AuditEventOut)
