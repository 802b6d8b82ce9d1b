"""Every tenancy and API-key write names its actor; creating an organisation is audited."""

from __future__ import annotations

import pytest

from saas.apikeys import services as key_services
from saas.common.actor import Actor
from saas.tenancy import services
from saas.tenancy.models import AuditEvent, Organization

pytestmark = pytest.mark.django_db


def test_organisation_creation_is_audited_with_its_actor(acme):
    actor = Actor(user_id=acme.users["admin"].pk, ip="192.0.2.1")
    org = services.organization_create(
        slug="initech", name="Initech", owner_email="bill@initech.test", plan="pro", actor=actor
    )
    # Billing's receiver also records billing_account.created (the system's) in the same
    # transaction; the organisation's own event is the one that carries this actor.
    event = AuditEvent.objects.for_tenant(org).get(action="organization.created")
    assert (event.action, event.target_id, event.actor_user_id, event.ip) == (
        "organization.created",
        org.pk,
        actor.user_id,
        "192.0.2.1",
    )
    assert event.data["owner"] == "bill@initech.test" and event.data["plan"] == "pro"


def test_signup_records_the_new_user_as_the_actor(db):
    m = services.account_signup(
        email="new@x.test",
        password="a-Long-passw0rd",
        organization_name="New Co",
        actor=Actor(ip="198.51.100.7"),
    )
    event = AuditEvent.objects.for_tenant(m.organization).get(action="organization.created")
    assert event.actor_user_id == m.user_id and event.ip == "198.51.100.7"


@pytest.mark.parametrize(
    "call",
    [
        lambda org: services.organization_create(slug="x", name="x", owner_email="x@x.test"),
        lambda org: services.organization_suspend(organization=org),
        lambda org: services.organization_reactivate(organization=org),
        lambda org: key_services.api_key_create(organization=org),
        lambda org: services.account_signup(email="y@x.test", password="p", organization_name="y"),
    ],
)
def test_writes_without_an_actor_are_refused(acme, call):
    before = AuditEvent.objects.for_tenant(acme.org).count(), Organization.objects.count()
    with pytest.raises(TypeError, match="actor"):
        call(acme.org)
    assert (AuditEvent.objects.for_tenant(acme.org).count(), Organization.objects.count()) == before


def test_revoking_a_key_needs_an_actor(acme):
    key = acme.key("owner").api_key
    with pytest.raises(TypeError, match="actor"):
        key_services.api_key_revoke(api_key=key)
    key.refresh_from_db()
    assert key.revoked_at is None
