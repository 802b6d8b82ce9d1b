"""/v1/invitations: invite an email address with a role, list invitations, accept one.

For signed-in users (the dashboard's session): inviting has no API-key scope, so a leaked
key cannot invite people; accepting is refused to an API key outright.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from saas.apikeys.models import ApiKey
from saas.common.actor import Actor
from saas.tenancy import selectors as tenancy_selectors
from saas.tenancy import services as tenancy
from saas.tenancy.models import Membership
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of
from .members import MemberOut


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
            access=self.access,
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
