"""The operator commands of DESIGN §4."""

import io

import pytest
from django.core.management import CommandError, call_command

from saas.apikeys.models import ApiKey
from saas.billing.selectors import billing_account_get
from saas.tenancy.models import Membership, Organization

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


def test_create_tenant_and_key():
    org_id = run(
        "create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test", "--plan", "pro"
    )
    org = Organization.objects.get(pk=org_id)
    assert billing_account_get(organization=org).plan.code == "pro"
    assert Membership.objects.get(organization=org).role == "owner"
    key = run("create_api_key", "acme", "--name", "ci")
    assert key.startswith("ty_live_") and "\n" not in key
    assert ApiKey.objects.for_tenant(org).get().name == "ci"
    assert run("revoke_api_key", key[:20]).startswith("revoked")
    assert ApiKey.objects.for_tenant(org).get().revoked_at is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["Bad Slug!", "--name", "x", "--owner-email", "a@b.test"], "invalid slug"),
        (["", "--name", "x", "--owner-email", "a@b.test"], "invalid slug"),
        (["ok", "--name", " ", "--owner-email", "a@b.test"], "--name"),
        (["ok", "--name", "x", "--owner-email", "notanemail"], "owner-email"),
        (["ok", "--name", "x", "--owner-email", "a@b.test", "--plan", "bogus"], "unknown plan"),
    ],
)
def test_create_tenant_rejects_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        run("create_tenant", *args)
    assert Organization.objects.count() == 0


def test_duplicate_slug_and_unknown_tenant():
    run("create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test")
    with pytest.raises(CommandError, match="already exists"):
        run("create_tenant", "acme", "--name", "Acme", "--owner-email", "o@acme.test")
    with pytest.raises(CommandError, match="no organisation"):
        run("create_api_key", "nope")
