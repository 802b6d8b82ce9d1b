"""/v1/usage: usage by meter and day for the caller's organisation."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from saas.common.errors import ValidationFailed
from saas.metering.selectors import usage_by_meter_and_day
from saas.tenancy.permissions import Action

from ..base import TenantAPIView


class UsageView(TenantAPIView):
    """Usage by meter and day (UTC) for the caller's organisation."""

    actions = {"GET": Action.USAGE_READ}

    @extend_schema(responses={200: OpenApiResponse(description="usage by meter and day")})
    def get(self, request):
        group_by = request.query_params.get("group_by") or None
        if group_by not in (None, "api_key", "model"):
            raise ValidationFailed(
                "Unknown group_by.", errors=[{"field": "group_by", "message": "api_key or model"}]
            )
        rows = usage_by_meter_and_day(organization_id=self.organization.pk, group_by=group_by)
        return Response({"object": "list", "data": rows, "next_cursor": None})
