"""/v1 endpoints for API keys, members, invitations and the audit log.

These are for signed-in users (the dashboard's session): the role table has no API-key scope
for them, so a leaked key can neither mint keys nor invite people.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from saas.apikeys import selectors as key_selectors
from saas.apikeys import services as key_services
from saas.apikeys.models import SCOPES, ApiKey
from saas.common.actor import Actor
from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy
from saas.tenancy.models import Membership
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
            membership=m, role=ser.validated_data["role"], actor_role=self.role, actor=self.actor
        )
        return Response(MemberOut(m).data)

    @extend_schema(responses={204: None})
    def delete(self, request, member_id: str):
        m = tenancy_selectors.membership_get(organization=self.organization, member_id=member_id)
        if m.user_id != request.user.pk:  # leaving needs membership only, removing others more
            self.access.require(Action.MEMBERS_MANAGE)
        tenancy.membership_remove(membership=m, actor_role=self.role, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    email = serializers.EmailField()
    role = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "invitation"


class InvitationIn(serializers.Serializer):
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=Membership.Role.values)


class InvitationListView(TenantAPIView):
    """Invitations: list them, or invite an email address with a role (an emailed single-use token)."""

    actions = {"GET": Action.MEMBERS_MANAGE, "POST": Action.MEMBERS_MANAGE}

    @extend_schema(responses=page_of(InvitationOut), parameters=PAGE_PARAMS)
    def get(self, request):
        return self.paginate(
            tenancy_selectors.invitation_list(organization=self.organization), InvitationOut
        )

    @extend_schema(request=InvitationIn, responses={201: InvitationOut})
    def post(self, request):
        ser = InvitationIn(data=request.data)
        ser.is_valid(raise_exception=True)
        issued = tenancy.invitation_create(
            organization=self.organization,
            actor_role=self.role,
            actor=self.actor,
            **ser.validated_data,
        )
        return Response(InvitationOut(issued.invitation).data, status=status.HTTP_201_CREATED)


class InvitationAcceptIn(serializers.Serializer):
    token = serializers.CharField(max_length=200)


class InvitationAcceptView(APIView):
    """A signed-in user accepts an invitation (any organisation: the token says which)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=InvitationAcceptIn, responses={201: MemberOut})
    def post(self, request):
        if isinstance(request.auth, ApiKey):
            raise exceptions.PermissionDenied(
                "Accept invitations as a signed-in user, not with an API key."
            )
        ser = InvitationAcceptIn(data=request.data)
        ser.is_valid(raise_exception=True)
        m = tenancy.invitation_accept(
            token=ser.validated_data["token"],
            user=request.user,
            actor=Actor.for_user(request, request.user),
        )
        return Response(MemberOut(m).data, status=status.HTTP_201_CREATED)


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
