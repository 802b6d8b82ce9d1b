"""/v1/members: the organisation's members and their roles; change a role, remove, leave.

For signed-in users (the dashboard's session): managing members has no API-key scope, so a
leaked key cannot change who belongs to the organisation.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy
from saas.tenancy.models import Membership
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of


class MemberOut(serializers.Serializer):
    id = serializers.SerializerMethodField()
    object = serializers.SerializerMethodField()
    email = serializers.CharField(source="user.email")
    role = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_id(self, obj) -> str:
        return f"mem_{obj.pk}"

    def get_object(self, obj) -> str:
        return "member"


class MemberRoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.values)


class MemberListView(TenantAPIView):
    """Members of the organisation and their roles."""

    actions = {"GET": Action.MEMBERS_READ}

    @extend_schema(responses=page_of(MemberOut), parameters=PAGE_PARAMS)
    def get(self, request):
        members = tenancy_selectors.membership_list(organization=self.organization)
        return self.paginate(members, MemberOut, ordering=("created_at", "pk"))


class MemberDetailView(TenantAPIView):
    """Change a member's role (members.manage) or remove them; anyone may leave. The last owner cannot."""

    # Leaving needs only membership; removing someone else needs members.manage (checked below).
    actions = {"PATCH": Action.MEMBERS_MANAGE, "DELETE": Action.MEMBERS_READ}

    @extend_schema(request=MemberRoleIn, responses=MemberOut)
    def patch(self, request, member_id: str):
        m = tenancy_selectors.membership_get(organization=self.organization, member_id=member_id)
        ser = MemberRoleIn(data=request.data)
        ser.is_valid(raise_exception=True)
        m = tenancy.membership_change_role(
            membership=m, role=ser.validated_data["role"], access=self.access, actor=self.actor
        )
        return Response(MemberOut(m).data)

    @extend_schema(responses={204: None})
    def delete(self, request, member_id: str):
        m = tenancy_selectors.membership_get(organization=self.organization, member_id=member_id)
        if m.user_id != request.user.pk:  # leaving needs membership only, removing others more
            self.access.require(Action.MEMBERS_MANAGE)
        tenancy.membership_remove(membership=m, access=self.access, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
