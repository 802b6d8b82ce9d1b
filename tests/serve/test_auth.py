"""Who may predict on the data plane: credentials (401), scopes and suspension (403), tenant
isolation (404), and a revocation or a suspension refused by every replica within 1 s."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_create, api_key_revoke
from saas.common.actor import Actor
from saas.tenancy.services.organizations import organization_suspend
from tests.conftest import make_tenant
from tests.serve.conftest import register_text_model, serve_app
from tests.serve.test_predict import assert_problem, bearer

pytestmark = pytest.mark.tf

BODY = {"inputs": ["great film"]}


def predict(client, model_id: str, headers: dict[str, str]):
    return client.post(f"/v1/models/{model_id}/predict", json=BODY, headers=headers)


@pytest.mark.parametrize(
    "authorization, detail",
    [
        (None, "Send Authorization: Bearer <API key>."),
        ("", "Send Authorization: Bearer <API key>."),
        ("Bearer", "Send Authorization: Bearer <API key>."),
        ("Bearer   ", "Send Authorization: Bearer <API key>."),
        ("Basic dXNlcjpwYXNz", "Send Authorization: Bearer <API key>."),
        ("Bearer nope", "malformed API key"),
        ("Bearer ty_live_" + "x" * 200, "malformed API key"),
        ("Bearer ty_live_short_x", "malformed API key"),
        ("Bearer ty_live_abcdefghijkl_wrongsecretwrongsecretwrongsecretwrongsecret", None),
        ("Internal not-a-signed-token", "invalid or expired internal token"),
    ],
)
def test_bad_credentials_are_401_with_www_authenticate(
    serve_client, tenant, text_model, authorization, detail
):
    headers = {} if authorization is None else {"Authorization": authorization}
    for _ in range(2):  # the second answer comes from the negative cache: the same
        r = predict(serve_client, text_model, headers)
        problem = assert_problem(r, 401)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert problem["type"].endswith("/unauthenticated")
        if detail is not None:
            assert problem["detail"] == detail


def test_revoked_and_expired_keys_are_401(serve_client, tenant, text_model):
    key = ApiKey.objects.for_tenant(tenant.org).get()
    api_key_revoke(api_key=key, actor=Actor.system())
    r = predict(serve_client, text_model, bearer(tenant.key))
    assert "revoked" in assert_problem(r, 401)["detail"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    issued = api_key_create(organization=tenant.org, actor=Actor.system())
    # Created live (an expiry in the past is refused at creation), then its time runs out.
    ApiKey.objects.for_tenant(tenant.org).filter(pk=issued.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    r = predict(serve_client, text_model, bearer(issued.secret))
    assert "expired" in assert_problem(r, 401)["detail"]


def test_a_key_without_the_predict_scope_is_403_naming_it(serve_client, text_model, tenant):
    issued = api_key_create(
        organization=tenant.org,
        name="ro",
        scopes=["training:read", "usage:read"],
        actor=Actor.system(),
    )
    r = predict(serve_client, text_model, bearer(issued.secret))
    problem = assert_problem(r, 403)
    assert problem["type"].endswith("/forbidden") and "models:predict" in problem["detail"]


def test_another_tenants_model_is_the_same_404_as_a_missing_one(
    serve_client, tenant, other_tenant, text_model
):
    theirs = predict(serve_client, text_model, bearer(other_tenant.key))
    missing = predict(serve_client, "mdl_doesnotexist", bearer(other_tenant.key))
    malformed = predict(serve_client, "nope", bearer(other_tenant.key))
    assert_problem(theirs, 404)
    assert theirs.content == missing.content == malformed.content
    assert theirs.headers["content-type"] == missing.headers["content-type"]
    assert predict(serve_client, text_model, bearer(tenant.key)).status_code == 200


def test_a_suspended_organisation_is_403(serve_client, tenant, text_model):
    organization_suspend(organization=tenant.org, actor=Actor.system(), reason="test")
    r = predict(serve_client, text_model, bearer(tenant.key))
    assert assert_problem(r, 403)["type"].endswith("/organization-suspended")


def _first_refusal(clients, model_id: str, headers, status: int, since: float) -> list[float]:
    """Seconds after ``since`` at which each client first answered ``status`` (polling every
    20 ms for up to 3 s; ``inf`` if never)."""
    seen = [float("inf")] * len(clients)
    deadline = since + 3
    while time.monotonic() < deadline and float("inf") in seen:
        for i, c in enumerate(clients):
            if seen[i] == float("inf"):
                r = predict(c, model_id, headers)
                if r.status_code == status:
                    seen[i] = time.monotonic() - since
                else:
                    assert r.status_code == 200, r.text
        time.sleep(0.02)
    return seen


@pytest.fixture
def two_replicas(transactional_db, clean_redis):
    """Two data plane apps (each its own key cache and refresher), at the production refresh
    interval (0.5 s), not the faster one the other tests use."""
    with serve_app(auth_refresh_s=0.5) as a, serve_app(auth_refresh_s=0.5) as b:
        yield a, b


def test_a_revoked_key_is_refused_by_every_replica_within_one_second(
    two_replicas, tenant, text_model
):
    for c in two_replicas:
        for _ in range(3):  # warm: the key is cached, the model loaded
            assert predict(c, text_model, bearer(tenant.key)).status_code == 200
    key = ApiKey.objects.for_tenant(tenant.org).get()
    revoked_at = time.monotonic()
    api_key_revoke(api_key=key, actor=Actor.system())
    seen = _first_refusal(two_replicas, text_model, bearer(tenant.key), 401, revoked_at)
    print(f"\nrevocation refused after {seen} s")
    assert max(seen) <= 1.0, seen


def test_a_suspension_is_refused_by_every_replica_within_one_second(
    two_replicas, tenant, text_model
):
    for c in two_replicas:
        for _ in range(3):
            assert predict(c, text_model, bearer(tenant.key)).status_code == 200
    suspended_at = time.monotonic()
    organization_suspend(organization=tenant.org, actor=Actor.system(), reason="test")
    seen = _first_refusal(two_replicas, text_model, bearer(tenant.key), 403, suspended_at)
    print(f"\nsuspension refused after {seen} s")
    assert max(seen) <= 1.0, seen


def test_keys_of_two_tenants_on_one_replica_stay_apart(serve_client, text_saved_model):
    a, b = make_tenant("alpha"), make_tenant("beta")
    ma = register_text_model(a.org, text_saved_model, "mdl_alpha1")
    mb = register_text_model(b.org, text_saved_model, "mdl_beta1")
    assert predict(serve_client, ma, bearer(a.key)).status_code == 200
    assert predict(serve_client, mb, bearer(b.key)).status_code == 200
    assert predict(serve_client, mb, bearer(a.key)).status_code == 404
    assert predict(serve_client, ma, bearer(b.key)).status_code == 404


def test_the_data_plane_walk(serve_client, acme, globex, text_saved_model):
    """Every data plane route that names a model, as keys of B with every single scope, all
    scopes, and created by every role, with A's model id: 403 (scope or role) or 404, never
    A's data, never a prediction billed to A."""
    from saas.apikeys.models import SCOPES
    from tests.conftest import ROLES

    model = register_text_model(acme.org, text_saved_model, "mdl_walk1")
    keys = {f"scope:{s}": globex.key("owner", scopes=[s]) for s in SCOPES}
    keys["all"] = globex.key("owner")
    keys |= {f"role:{r}": globex.key(r) for r in ROLES}
    routes = [
        ("post", f"/v1/models/{model}/predict", {"inputs": ["x"]}),
        ("get", f"/v2/models/{model}", None),
        ("get", f"/v2/models/{model}/ready", None),
        ("get", f"/v2/models/{model}/versions/1", None),
        (
            "post",
            f"/v2/models/{model}/infer",
            {"inputs": [{"datatype": "BYTES", "shape": [1], "data": ["x"]}]},
        ),
        (
            "post",
            f"/v2/models/{model}/versions/1/infer",
            {"inputs": [{"datatype": "BYTES", "shape": [1], "data": ["x"]}]},
        ),
    ]
    attempts = 0
    for name, client in keys.items():
        secret = client._credentials["HTTP_AUTHORIZATION"]
        for method, path, body in routes:
            kwargs = {"json": body} if body is not None else {}
            r = getattr(serve_client, method)(path, headers={"Authorization": secret}, **kwargs)
            attempts += 1
            assert r.status_code in (403, 404), (name, method, path, r.status_code, r.text)
            assert "predictions" not in r.text and "classes" not in r.text, (name, path)
    assert attempts == len(keys) * len(routes)
    time.sleep(2.5)
    from saas.metering.models import UsageEvent

    assert not UsageEvent.objects.for_tenant(acme.org).exists()


def test_dashboard_members_predict_with_an_internal_token(serve_client, acme, text_saved_model):
    """The dashboard's "try it" sends ``Authorization: Internal <signed token>``: the data
    plane checks the member's role itself, bills the user as the principal, and refuses a
    token of someone no longer a member, or a tampered one."""
    from saas.inference.client import internal_token
    from saas.metering.models import UsageEvent
    from saas.tenancy.models import Membership
    from saas.tenancy.permissions import Action, role_allows
    from tests.conftest import ROLES
    from tests.serve.test_predict import wait_ledger

    model = register_text_model(acme.org, text_saved_model, "mdl_tryit1")

    def headers(user) -> dict[str, str]:
        token = internal_token(organization_id=acme.org.pk, user_id=user.pk)
        return {"Authorization": f"Internal {token}"}

    allowed = 0
    for role in ROLES:
        r = predict(serve_client, model, headers(acme.users[role]))
        if role_allows(role, Action.MODELS_PREDICT):
            assert r.status_code == 200, (role, r.text)
            allowed += 1
        else:
            assert assert_problem(r, 403)["type"].endswith("/forbidden"), role
    assert wait_ledger(acme.org, allowed) == allowed
    owner = acme.users["owner"]
    events = UsageEvent.objects.for_tenant(acme.org).filter(meter="predictions")
    assert any(e.dimensions["principal"] == f"user:{owner.pk}" for e in events)
    assert all(e.api_key_id is None for e in events)
    developer = acme.users["developer"]
    Membership.objects.filter(organization=acme.org, user=developer).delete()
    removed_at = time.monotonic()
    while True:  # the cached member is re-read within the refresh interval
        r = predict(serve_client, model, headers(developer))
        if r.status_code != 200 or time.monotonic() - removed_at > 2:
            break
        time.sleep(0.02)
    assert "no longer a member" in assert_problem(r, 401)["detail"]
    assert time.monotonic() - removed_at <= 1.0
    tampered = headers(owner)["Authorization"][:-2] + "xx"
    assert_problem(predict(serve_client, model, {"Authorization": tampered}), 401)


def test_a_key_is_refused_from_its_expiry_even_while_cached(
    transactional_db, clean_redis, tenant, text_saved_model
):
    # The background refresh is minutes away and the stale bound too: only the expiry carried
    # in the cached principal can refuse the key at its time.
    model_id = register_text_model(tenant.org, text_saved_model, "mdl_expiring1")
    issued = api_key_create(
        organization=tenant.org,
        expires_at=timezone.now() + timedelta(seconds=1.5),
        actor=Actor.system(),
    )
    with serve_app(auth_refresh_s=600.0, auth_max_stale_s=600.0) as client:
        assert predict(client, model_id, bearer(issued.secret)).status_code == 200
        time.sleep(1.6)
        r = predict(client, model_id, bearer(issued.secret))
        assert "expired" in assert_problem(r, 401)["detail"]
