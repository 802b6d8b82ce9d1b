"""The role table, API-key management, members, invitations, suspension and the audit log."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.tenancy.models import AuditEvent, Invitation, Membership, Organization
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


# The role table, spelled out by hand (the code's table must agree): method, path, role → status.
@pytest.mark.parametrize(
    "role, expected",
    [
        (
            "viewer",
            {
                "list_datasets": 200,
                "upload": 403,
                "usage": 403,
                "keys": 403,
                "audit": 403,
                "members": 200,
            },
        ),
        (
            "developer",
            {
                "list_datasets": 200,
                "upload": 201,
                "usage": 403,
                "keys": 200,
                "audit": 403,
                "members": 200,
            },
        ),
        (
            "billing",
            {
                "list_datasets": 403,
                "upload": 403,
                "usage": 200,
                "keys": 403,
                "audit": 403,
                "members": 200,
            },
        ),
        (
            "admin",
            {
                "list_datasets": 200,
                "upload": 201,
                "usage": 200,
                "keys": 200,
                "audit": 200,
                "members": 200,
            },
        ),
        (
            "owner",
            {
                "list_datasets": 200,
                "upload": 201,
                "usage": 200,
                "keys": 200,
                "audit": 200,
                "members": 200,
            },
        ),
    ],
)
def test_role_table(acme, role, expected):
    c = acme.session(role)
    got = {
        "list_datasets": c.get("/v1/datasets").status_code,
        "upload": upload(c, text_csv(small_text_rows())).status_code,
        "usage": c.get("/v1/usage").status_code,
        "keys": c.get("/v1/api-keys").status_code,
        "audit": c.get("/v1/audit-events").status_code,
        "members": c.get("/v1/members").status_code,
    }
    assert got == expected


def test_forbidden_names_the_reason(acme):
    r = upload(acme.session("viewer"), text_csv(small_text_rows()))
    assert (
        r.status_code == 403
        and "viewer" in r.json()["detail"]
        and "datasets.write" in r.json()["detail"]
    )


def test_key_created_by_a_user_is_bounded_by_their_current_role(acme):
    c = acme.key("developer")
    assert upload(c, text_csv(small_text_rows())).status_code == 201
    Membership.objects.filter(organization=acme.org, user=acme.users["developer"]).update(
        role="viewer"
    )
    r = upload(c, text_csv(small_text_rows()))
    assert r.status_code == 403 and "viewer" in r.json()["detail"]
    Membership.objects.filter(organization=acme.org, user=acme.users["developer"]).delete()
    assert c.get("/v1/datasets").status_code == 403  # no longer a member: reads stop too


def test_api_keys_cannot_manage_keys_or_members(acme):
    c = acme.key("owner")
    for path in ("/v1/api-keys", "/v1/members", "/v1/audit-events", "/v1/invitations"):
        r = c.get(path)
        assert r.status_code == 403 and "sign in" in r.json()["detail"], path


def test_create_list_revoke_keys(acme):
    dev = acme.session("developer")
    r = dev.post("/v1/api-keys", {"name": "ci", "scopes": ["datasets:read"]}, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    secret = created["secret"]
    assert (
        secret.startswith(created["prefix"] + "_")
        and created["created_by"] == "developer@acme.test"
    )
    listed = dev.get("/v1/api-keys").json()["data"]
    assert [k["id"] for k in listed] == [created["id"]] and "secret" not in listed[0]
    from rest_framework.test import APIClient

    prog = APIClient()
    prog.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert prog.get("/v1/datasets").status_code == 200
    assert dev.post(f"/v1/api-keys/{created['id']}/revoke").json()["revoked_at"] is not None
    r = prog.get("/v1/datasets")
    assert r.status_code == 401 and r["WWW-Authenticate"].startswith("Bearer")


def test_developers_manage_only_their_own_keys(acme):
    other = acme.key("admin").api_key
    dev = acme.session("developer")
    assert dev.post(f"/v1/api-keys/{other.pk}/revoke").status_code == 404
    assert all(k["id"] != other.pk for k in dev.get("/v1/api-keys").json()["data"])
    assert acme.session("admin").post(f"/v1/api-keys/{other.pk}/revoke").status_code == 200


def test_bad_key_creation(acme):
    c = acme.session("owner")
    r = c.post("/v1/api-keys", {"name": "x", "scopes": ["root"]}, format="json")
    assert r.status_code == 400 and r.json()["errors"][0]["field"].startswith("scopes")
    assert c.post("/v1/api-keys", {}, format="json").status_code == 400


def member_id(org, role):
    return f"mem_{Membership.objects.get(organization=org.org, user=org.users[role]).pk}"


def test_last_owner_cannot_leave_or_be_demoted(acme):
    owner = acme.session("owner")
    r = owner.patch(f"/v1/members/{member_id(acme, 'owner')}", {"role": "admin"}, format="json")
    assert r.status_code == 409 and "last owner" in r.json()["detail"]
    r = owner.delete(f"/v1/members/{member_id(acme, 'owner')}")
    assert r.status_code == 409
    # with a second owner, the first may step down
    assert (
        owner.patch(
            f"/v1/members/{member_id(acme, 'admin')}", {"role": "owner"}, format="json"
        ).status_code
        == 200
    )
    assert (
        owner.patch(
            f"/v1/members/{member_id(acme, 'owner')}", {"role": "developer"}, format="json"
        ).status_code
        == 200
    )


def test_admins_cannot_touch_owners(acme):
    admin = acme.session("admin")
    assert (
        admin.patch(
            f"/v1/members/{member_id(acme, 'viewer')}", {"role": "developer"}, format="json"
        ).status_code
        == 200
    )
    assert (
        admin.patch(
            f"/v1/members/{member_id(acme, 'developer')}", {"role": "owner"}, format="json"
        ).status_code
        == 409
    )
    assert admin.delete(f"/v1/members/{member_id(acme, 'owner')}").status_code == 409
    assert (
        acme.session("developer")
        .patch(f"/v1/members/{member_id(acme, 'viewer')}", {"role": "admin"}, format="json")
        .status_code
        == 403
    )


def test_members_may_leave(acme):
    viewer = acme.session("viewer")
    assert viewer.delete(f"/v1/members/{member_id(acme, 'viewer')}").status_code == 204
    assert not Membership.objects.filter(organization=acme.org, user=acme.users["viewer"]).exists()
    assert viewer.delete(f"/v1/members/{member_id(acme, 'billing')}").status_code == 403


def test_invitation_flow(acme, django_capture_on_commit_callbacks):
    from saas.tenancy.services import _user_for_email

    with django_capture_on_commit_callbacks(execute=True):
        r = acme.session("admin").post(
            "/v1/invitations", {"email": "new@person.test", "role": "developer"}, format="json"
        )
    assert r.status_code == 201, r.content
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@person.test"]
    token = mail.outbox[0].body.split("signed in: ")[1].strip()
    assert Invitation.objects.for_tenant(acme.org).get().token_sha256 != token
    from rest_framework.test import APIClient

    newcomer = APIClient()
    newcomer.force_login(_user_for_email("new@person.test"))
    stranger = APIClient()
    stranger.force_login(_user_for_email("someone@else.test"))
    assert (
        stranger.post("/v1/invitations/accept", {"token": token}, format="json").status_code == 404
    )
    r = newcomer.post("/v1/invitations/accept", {"token": token}, format="json")
    assert r.status_code == 201 and r.json()["role"] == "developer"
    assert (
        newcomer.post("/v1/invitations/accept", {"token": token}, format="json").status_code == 404
    )  # single use
    assert newcomer.get("/v1/datasets").status_code == 200


def test_expired_invitation(acme, django_capture_on_commit_callbacks):
    from rest_framework.test import APIClient

    from saas.tenancy.services import _user_for_email

    with django_capture_on_commit_callbacks(execute=True):
        acme.session("owner").post(
            "/v1/invitations", {"email": "late@person.test", "role": "viewer"}, format="json"
        )
    token = mail.outbox[-1].body.split("signed in: ")[1].strip()
    Invitation.objects.for_tenant(acme.org).update(expires_at=timezone.now() - timedelta(seconds=1))
    c = APIClient()
    c.force_login(_user_for_email("late@person.test"))
    assert c.post("/v1/invitations/accept", {"token": token}, format="json").status_code == 404


def test_only_owners_invite_owners(acme):
    r = acme.session("admin").post(
        "/v1/invitations", {"email": "x@y.test", "role": "owner"}, format="json"
    )
    assert r.status_code == 409
    r = acme.session("admin").post(
        "/v1/invitations", {"email": "developer@acme.test", "role": "viewer"}, format="json"
    )
    assert r.status_code == 409 and "already a member" in r.json()["detail"]


def test_suspended_organisation_reads_but_cannot_train_or_predict(acme):
    c = acme.key("owner")
    ds = upload(c, text_csv(small_text_rows())).json()
    Organization.objects.filter(pk=acme.org.pk).update(status="suspended")
    assert c.get("/v1/datasets").status_code == 200
    r = c.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert r.status_code == 403 and "suspended" in r.json()["detail"]
    assert r.json()["type"].endswith("organization-suspended")
    assert c.post("/v1/models/mdl_x/predict", {"inputs": ["x"]}, format="json").status_code == 403


def test_audit_log_records_who_did_what(acme):
    owner = acme.session("owner")
    key = owner.post(
        "/v1/api-keys", {"name": "ci"}, format="json", REMOTE_ADDR="203.0.113.9"
    ).json()
    owner.post(f"/v1/api-keys/{key['id']}/revoke")
    owner.patch(f"/v1/members/{member_id(acme, 'viewer')}", {"role": "developer"}, format="json")
    ds = upload(acme.key("owner"), text_csv(small_text_rows())).json()
    job = acme.key("owner").post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    acme.key("owner").post(f"/v1/training-jobs/{job['id']}/cancel")
    acme.key("owner").delete(f"/v1/datasets/{ds['id']}")
    events = acme.session("admin").get("/v1/audit-events?limit=100").json()["data"]
    actions = [e["action"] for e in reversed(events)]
    assert actions[:5] == [
        # Billing's receiver opens the account on the organisation's first save, before
        # organization_create records its own event (same transaction).
        "billing_account.created",
        "organization.created",  # creating the organisation is audited too
        "api_key.created",
        "api_key.revoked",
        "membership.role_changed",
    ]
    assert "training_job.cancelled" in actions and "dataset.deleted" in actions
    created = next(
        e for e in events if e["action"] == "api_key.created" and e["target_id"] == key["id"]
    )
    assert created["actor"]["user"] == "owner@acme.test" and created["ip"] == "203.0.113.9"
    cancelled = next(e for e in events if e["action"] == "training_job.cancelled")
    assert cancelled["actor"]["api_key"] is not None
    assert AuditEvent.objects.for_tenant(acme.org).count() >= 6


def test_trusted_proxy_count_picks_the_client_ip(acme, settings):
    settings.TRAINYARD_TRUSTED_PROXIES = 1
    owner = acme.session("owner")
    owner.post(
        "/v1/api-keys",
        {"name": "p"},
        format="json",
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
    )
    assert (
        AuditEvent.objects.for_tenant(acme.org).get(action="api_key.created").ip == "198.51.100.7"
    )


def test_key_last_used_and_revocation_are_per_key(acme):
    a, b = acme.key("owner"), acme.key("owner")
    ApiKey.objects.for_tenant(acme.org).filter(pk=a.api_key.pk).update(revoked_at=timezone.now())
    assert a.get("/v1/datasets").status_code == 401
    assert b.get("/v1/datasets").status_code == 200
