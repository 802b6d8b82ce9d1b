"""An invitation is only as good as its inviter's current right to invite (checked at acceptance).

A removed or demoted admin must not rejoin (or let a friend in) through an invitation they left
pending: acceptance re-checks that the inviter is still a member whose role may invite with
the invited role; otherwise the token answers like an unknown one (404), nothing is joined.
"""

from __future__ import annotations

import pytest
from django.core import mail
from rest_framework.test import APIClient

from saas.common.actor import Actor
from saas.tenancy.access import Access
from saas.tenancy.models import AuditEvent, Membership
from saas.tenancy.services import _user_for_email, membership_change_role, membership_remove

pytestmark = pytest.mark.django_db


def _invite(acme, role_of_inviter: str, email: str, role: str, capture) -> str:
    with capture(execute=True):
        r = acme.session(role_of_inviter).post(
            "/v1/invitations", {"email": email, "role": role}, format="json"
        )
    assert r.status_code == 201, r.content
    return mail.outbox[-1].body.split("signed in: ")[1].strip()


def _owner_access(acme) -> Access:
    return Access(organization=acme.org, role="owner", user_id=acme.users["owner"].pk)


def _client(email: str) -> APIClient:
    c = APIClient()
    c.force_login(_user_for_email(email))
    return c


def _accept(email: str, token: str):
    return _client(email).post("/v1/invitations/accept", {"token": token}, format="json")


def _membership(acme, role: str) -> Membership:
    return Membership.objects.get(organization=acme.org, user=acme.users[role])


def test_removed_admins_pending_invitation_is_refused(acme, django_capture_on_commit_callbacks):
    token = _invite(acme, "admin", "alias@evil.test", "admin", django_capture_on_commit_callbacks)
    membership_remove(
        membership=_membership(acme, "admin"), access=_owner_access(acme), actor=Actor.system()
    )
    r = _accept("alias@evil.test", token)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/problem+json"
    assert not Membership.objects.filter(
        organization=acme.org, user__email="alias@evil.test"
    ).exists()
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="membership.added").exists()


def test_demoted_admins_pending_invitation_is_refused(acme, django_capture_on_commit_callbacks):
    token = _invite(acme, "admin", "friend@evil.test", "viewer", django_capture_on_commit_callbacks)
    membership_change_role(
        membership=_membership(acme, "admin"),
        role="developer",
        access=_owner_access(acme),
        actor=Actor.system(),
    )
    assert _accept("friend@evil.test", token).status_code == 404
    assert not Membership.objects.filter(
        organization=acme.org, user__email="friend@evil.test"
    ).exists()


def test_demoted_owners_owner_invitation_is_refused_but_admin_one_holds(
    acme, django_capture_on_commit_callbacks
):
    # A second owner, so the first can be demoted (the last owner cannot).
    second = _user_for_email("second@acme.test")
    Membership.objects.create(organization=acme.org, user=second, role="owner")
    as_owner = _invite(acme, "owner", "o@new.test", "owner", django_capture_on_commit_callbacks)
    as_admin = _invite(acme, "owner", "a@new.test", "admin", django_capture_on_commit_callbacks)
    membership_change_role(
        membership=_membership(acme, "owner"),
        role="admin",
        access=Access(organization=acme.org, role="owner", user_id=second.pk),
        actor=Actor.system(),
    )
    # Now an admin: may still grant admin, no longer owner.
    assert _accept("o@new.test", as_owner).status_code == 404
    r = _accept("a@new.test", as_admin)
    assert r.status_code == 201 and r.json()["role"] == "admin"


def test_invitation_of_a_current_admin_still_works(acme, django_capture_on_commit_callbacks):
    token = _invite(acme, "admin", "ok@new.test", "developer", django_capture_on_commit_callbacks)
    r = _accept("ok@new.test", token)
    assert r.status_code == 201 and r.json()["role"] == "developer"


def test_dashboard_link_of_removed_inviter_is_not_found(acme, django_capture_on_commit_callbacks):
    token = _invite(acme, "admin", "alias@evil.test", "admin", django_capture_on_commit_callbacks)
    membership_remove(
        membership=_membership(acme, "admin"), access=_owner_access(acme), actor=Actor.system()
    )
    c = _client("alias@evil.test")
    assert c.get(f"/invitations/accept?token={token}").status_code == 404
    assert c.post("/invitations/accept", {"token": token}).status_code == 404
    assert not Membership.objects.filter(
        organization=acme.org, user__email="alias@evil.test"
    ).exists()


def test_sign_up_with_removed_inviters_token_joins_nothing(
    acme, django_capture_on_commit_callbacks
):
    token = _invite(acme, "admin", "fresh@evil.test", "admin", django_capture_on_commit_callbacks)
    membership_remove(
        membership=_membership(acme, "admin"), access=_owner_access(acme), actor=Actor.system()
    )
    from django.test import Client

    r = Client().post(
        "/signup",
        {"email": "fresh@evil.test", "password": "a-long-pass-phrase-7", "invitation": token},
    )
    assert not Membership.objects.filter(
        organization=acme.org, user__email="fresh@evil.test"
    ).exists()
    assert r.status_code in (200, 302)
