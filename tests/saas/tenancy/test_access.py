"""The one access rule (``saas.tenancy.access.Access``) and the API base view failing closed."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from saas.api.base import TenantAPIView
from saas.tenancy.access import (
    Access,
    AccessDenied,
    NotAMember,
    OrganizationSuspended,
)
from saas.tenancy.models import Membership, Organization
from saas.tenancy.permissions import Action
from saas.tenancy.services import _user_for_email

pytestmark = pytest.mark.django_db


def test_a_handler_without_an_action_is_refused_when_the_class_is_created():
    with pytest.raises(TypeError, match="POST"):

        class Leaky(TenantAPIView):
            actions = {"GET": Action.DATASETS_READ}

            def get(self, request):
                return Response({})

            def post(self, request):  # no action: nobody would check who may do this
                return Response({})


def test_an_inherited_handler_needs_an_action_too():
    class Reader(TenantAPIView):
        actions = {"GET": Action.DATASETS_READ}

        def get(self, request):
            return Response({})

    with pytest.raises(TypeError, match="GET"):

        class Emptied(Reader):
            actions = {}


def test_a_method_whose_action_cannot_be_resolved_is_refused(acme):
    ran = []

    class Endpoint(TenantAPIView):
        actions = {"GET": Action.DATASETS_READ, "POST": Action.DATASETS_WRITE}

        def get(self, request):
            ran.append("get")
            return Response({"ok": True})

        def post(self, request):
            ran.append("post")
            return Response({"ok": True})

    client = acme.key("owner")
    secret = client._credentials["HTTP_AUTHORIZATION"]
    factory = APIRequestFactory()
    ok = Endpoint.as_view()(factory.get("/x", HTTP_AUTHORIZATION=secret))
    assert ok.status_code == 200 and ran == ["get"]

    Endpoint.actions = {}  # emptied after creation: the request must not be let through
    for request in (
        factory.get("/x", HTTP_AUTHORIZATION=secret),
        factory.head("/x", HTTP_AUTHORIZATION=secret),
        factory.post("/x", {}, format="json", HTTP_AUTHORIZATION=secret),
    ):
        response = Endpoint.as_view()(request)
        response.render()
        assert response.status_code == 403
        assert response["Content-Type"].startswith("application/problem+json")
    assert ran == ["get"]


def test_a_method_without_a_handler_stays_a_405(acme):
    class Endpoint(TenantAPIView):
        actions = {"GET": Action.DATASETS_READ}

        def get(self, request):
            return Response({})

    secret = acme.key("owner")._credentials["HTTP_AUTHORIZATION"]
    request = APIRequestFactory().put("/x", {}, format="json", HTTP_AUTHORIZATION=secret)
    assert Endpoint.as_view()(request).status_code == 405


def test_session_access_has_the_role_and_the_switcher_choice(acme, globex):
    dev = acme.users["developer"]
    Membership.objects.create(organization=globex.org, user=dev, role="admin")
    access = Access.for_session(dev, globex.org.pk)
    assert (access.organization, access.role, access.user_id) == (globex.org, "admin", dev.pk)
    assert access.principal == f"user:{dev.pk}" and not access.is_api_key
    assert {m.organization_id for m in access.memberships} == {acme.org.pk, globex.org.pk}
    # A stale choice falls back to the first membership, by organisation name.
    assert Access.for_session(dev, "org_gone").organization == acme.org

    with pytest.raises(NotAMember):
        Access.for_session(_user_for_email("nobody@x.test"), None)


def test_role_denial_names_the_role_and_require_raises():
    viewer = Access(organization=Organization(status="active"), role="viewer", user_id=1)
    assert viewer.denial(Action.DATASETS_READ) is None
    assert (
        viewer.denial(Action.DATASETS_WRITE)
        == "Your role (viewer) does not allow 'datasets.write'."
    )
    with pytest.raises(AccessDenied) as exc:
        viewer.require(Action.DATASETS_WRITE)
    assert exc.value.status == 403 and exc.value.code == "forbidden"


def test_key_access_is_scopes_bounded_by_the_creators_current_role(acme):
    key = acme.key("developer", scopes=["datasets:read", "datasets:write"]).api_key
    with CaptureQueriesContext(connection) as queries:
        access = Access.for_api_key(key)
    assert len(queries) == 1  # the creator's role, nothing else
    assert access.role == "developer" and access.is_api_key and access.principal == key.pk
    assert access.actor(ip="10.0.0.1").api_key_id == key.pk
    assert access.actor().user_id == acme.users["developer"].pk
    assert access.allows(Action.DATASETS_WRITE)
    assert "training:read" in access.denial(Action.TRAINING_READ)
    assert "sign in" in access.denial(Action.KEYS_READ)  # no scope: sessions only

    Membership.objects.filter(organization=acme.org, user=acme.users["developer"]).update(
        role="viewer"
    )
    demoted = Access.for_api_key(key)
    assert "role: viewer" in demoted.denial(Action.DATASETS_WRITE)
    assert demoted.allows(Action.DATASETS_READ)


def test_my_keys_only_is_one_rule(acme):
    dev = Access.for_session(acme.users["developer"], acme.org.pk)
    admin = Access.for_session(acme.users["admin"], acme.org.pk)
    assert dev.keys_created_by == acme.users["developer"].pk
    assert admin.keys_created_by is None


def test_the_owner_rule_is_one_rule(acme):
    owner = Access.for_session(acme.users["owner"], acme.org.pk)
    admin = Access.for_session(acme.users["admin"], acme.org.pk)
    assert owner.manages_owners and not admin.manages_owners
    assert "owner" in owner.grantable_roles()
    assert admin.grantable_roles() == [r for r in Membership.Role.values if r != "owner"]
    # A key, even an owner's, never manages members.
    assert not Access.for_api_key(acme.key("owner").api_key).manages_owners


def test_suspension_blocks_only_what_costs_money(acme):
    Organization.objects.filter(pk=acme.org.pk).update(status=Organization.Status.SUSPENDED)
    owner = Access.for_session(acme.users["owner"], acme.org.pk)
    assert owner.blocked_when_suspended(Action.TRAINING_WRITE)
    assert not owner.blocked_when_suspended(Action.DATASETS_READ)
    owner.require(Action.DATASETS_READ)
    with pytest.raises(OrganizationSuspended):
        owner.require(Action.MODELS_PREDICT)
