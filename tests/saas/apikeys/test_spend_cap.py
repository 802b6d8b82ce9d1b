"""A key's monthly spend cap: set through one audited service, from the API (billing managers,
signed in) or the operator admin; refused when invalid, another tenant's key is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.utils import quote

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_create, api_key_spend_cap_set
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.models import AuditEvent

pytestmark = pytest.mark.django_db


def _key(org) -> ApiKey:
    return api_key_create(
        organization=org.org, name="ci", created_by=org.users["developer"], actor=Actor.system()
    ).api_key


def _cap(key: ApiKey) -> Decimal | None:
    return ApiKey.objects.for_tenant(key.organization_id).get(pk=key.pk).monthly_spend_cap


def test_billing_managers_set_and_remove_a_key_cap_audited(acme):
    key = _key(acme)
    for role in ("owner", "admin", "billing"):
        r = acme.session(role).patch(
            f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": "12.50"}, format="json"
        )
        assert r.status_code == 200, (role, r.content)
        assert r.json()["monthly_spend_cap"] == "12.50"
    assert _cap(key) == Decimal("12.50")
    assert "name" not in r.json()  # the billing role (last) cannot read keys, only set caps
    # Only a real change is audited: three PATCHes with the same value, one event.
    events = AuditEvent.objects.for_tenant(acme.org).filter(action="api_key.spend_cap_changed")
    assert [(e.data["old"], e.data["new"]) for e in events] == [(None, "12.50")]
    r = acme.session("owner").patch(
        f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": None}, format="json"
    )
    assert r.status_code == 200 and r.json()["monthly_spend_cap"] is None
    assert _cap(key) is None


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_other_roles_and_api_keys_cannot_set_caps(acme, role):
    key = _key(acme)
    r = acme.session(role).patch(
        f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": "1.00"}, format="json"
    )
    assert r.status_code == 403
    r = acme.key("owner").patch(
        f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": "1.00"}, format="json"
    )
    assert r.status_code == 403  # no scope grants billing: a leaked key cannot lift a cap
    assert _cap(key) is None


def test_another_tenants_key_is_404_and_unchanged(acme, globex):
    key = _key(globex)
    r = acme.session("owner").patch(
        f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": "1.00"}, format="json"
    )
    assert r.status_code == 404
    assert _cap(key) is None


@pytest.mark.parametrize("bad", ["-1", "1.005", "abc", "1e400", [1]])
def test_invalid_caps_are_400_naming_the_field(acme, bad):
    key = _key(acme)
    r = acme.session("owner").patch(
        f"/v1/api-keys/{key.pk}", {"monthly_spend_cap": bad}, format="json"
    )
    assert r.status_code == 400
    assert r["Content-Type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "monthly_spend_cap"
    assert _cap(key) is None


def test_the_service_refuses_a_negative_cap(acme):
    with pytest.raises(ValidationFailed):
        api_key_spend_cap_set(
            api_key=_key(acme), monthly_spend_cap=Decimal("-1"), actor=Actor.system()
        )


def test_the_operator_admin_sets_a_cap_through_the_service(acme, operator, console):
    key = _key(acme)
    url = f"/admin/apikeys/apikey/{quote(key.pk)}/change/"
    page = console.get(url)
    assert page.status_code == 200 and b'name="monthly_spend_cap"' in page.content
    assert b'name="name"' not in page.content  # everything else stays read-only
    r = console.post(url, {"monthly_spend_cap": "-5"})
    assert r.status_code == 200 and "amount ≥ 0" in r.content.decode()  # a form error
    assert _cap(key) is None
    r = console.post(url, {"monthly_spend_cap": "3.00"})
    assert r.status_code == 302, r.content[:2000]
    assert _cap(key) == Decimal("3.00")
    event = AuditEvent.objects.for_tenant(acme.org).get(action="api_key.spend_cap_changed")
    assert event.actor_user_id == operator.pk and event.data["new"] == "3.00"
