"""API-key services and selectors against PostgreSQL: only a digest stored, revocation once,
authentication failing closed, reads scoped by tenant and by creator."""

from __future__ import annotations

import hashlib

import pytest

from saas.apikeys import selectors
from saas.apikeys.models import ApiKey
from saas.apikeys.services import (
    InvalidApiKey,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
)
from saas.common.actor import Actor
from saas.common.errors import NotFound
from saas.tenancy.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_stores_only_the_digest_and_audits(acme):
    owner = acme.users["owner"]
    issued = api_key_create(
        organization=acme.org,
        name="ci",
        scopes=["datasets:read"],
        created_by=owner,
        actor=Actor(user_id=owner.pk),
    )
    row = ApiKey.objects.for_tenant(acme.org).get(pk=issued.api_key.pk)
    assert row.secret_sha256 == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in {str(v) for v in row.__dict__.values()}
    event = AuditEvent.objects.for_tenant(acme.org).get(action="api_key.created", target_id=row.pk)
    assert event.actor_user_id == owner.pk
    assert event.data == {"name": "ci", "scopes": ["datasets:read"]}
    assert api_key_authenticate(raw=issued.secret) == row


def test_an_unknown_scope_creates_nothing(acme):
    before = ApiKey.objects.for_tenant(acme.org).count()
    with pytest.raises(ValueError, match="unknown scopes: nope"):
        api_key_create(organization=acme.org, scopes=["nope"], actor=Actor.system())
    assert ApiKey.objects.for_tenant(acme.org).count() == before


def test_revoke_is_audited_once_and_authentication_then_fails(acme):
    issued = api_key_create(organization=acme.org, actor=Actor.system())
    actor = Actor(user_id=acme.users["admin"].pk)
    api_key_revoke(api_key=issued.api_key, actor=actor)
    api_key_revoke(api_key=issued.api_key, actor=actor)
    revoked = AuditEvent.objects.for_tenant(acme.org).filter(action="api_key.revoked")
    assert [e.actor_user_id for e in revoked] == [actor.user_id]
    with pytest.raises(InvalidApiKey, match="revoked"):
        api_key_authenticate(raw=issued.secret)


@pytest.mark.parametrize("raw", ["", "ty_live_", "sk_live_abc", "ty_live_short_x"])
def test_malformed_keys_are_refused(db, raw):
    with pytest.raises(InvalidApiKey, match="malformed"):
        api_key_authenticate(raw=raw)


def test_a_forged_secret_for_a_real_public_id_is_refused(acme):
    issued = api_key_create(organization=acme.org, actor=Actor.system())
    forged = issued.secret[:-4] + ("AAAA" if not issued.secret.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidApiKey, match="invalid"):
        api_key_authenticate(raw=forged)


def test_reads_are_scoped_by_tenant_and_creator(acme, globex):
    dev = acme.key("developer").api_key
    own = acme.key("owner").api_key
    theirs = globex.key("owner").api_key
    mine = selectors.api_key_list(organization_id=acme.org.pk, created_by_id=dev.created_by_id)
    assert list(mine) == [dev]
    assert {k.pk for k in selectors.api_key_list(organization_id=acme.org.pk)} >= {dev.pk, own.pk}
    with pytest.raises(NotFound):
        selectors.api_key_get(organization_id=acme.org.pk, key_id=theirs.pk)
    with pytest.raises(NotFound):
        selectors.api_key_get(
            organization_id=acme.org.pk, key_id=own.pk, created_by_id=dev.created_by_id
        )
    assert selectors.api_key_get(organization_id=acme.org.pk, key_id=own.pk) == own
