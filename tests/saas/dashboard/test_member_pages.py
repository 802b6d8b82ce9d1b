"""Member pages (saas/dashboard/views/members.py): roles, the last-owner rule, invitations
sent, replaced and revoked.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import re

from django.core import mail
from django.test import Client

from saas.tenancy.models import Membership
from tests.conftest import Org

from .conftest import browser, html


def test_members_role_change_and_last_owner_rule(acme):
    owner = browser(acme.users["owner"])
    viewer = Membership.objects.get(organization=acme.org, user=acme.users["viewer"])
    assert (
        owner.post(f"/app/members/mem_{viewer.pk}/role", {"role": "developer"}).status_code == 302
    )
    viewer.refresh_from_db()
    assert viewer.role == "developer"
    me = Membership.objects.get(organization=acme.org, user=acme.users["owner"])
    r = owner.post(f"/app/members/mem_{me.pk}/remove", follow=True)
    assert "last owner" in html(r).lower()
    dup = owner.post("/app/members", {"email": "viewer@acme.test", "role": "viewer"})
    assert dup.status_code == 409 and "already a member" in html(dup)
    assert 'value="viewer@acme.test"' in html(dup)


def test_invitations_are_revocable_and_a_new_one_replaces_the_pending_one(
    acme, django_capture_on_commit_callbacks
):
    from saas.tenancy.models import Invitation

    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/app/members", {"email": "x@acme.test", "role": "viewer"})
        owner.post("/app/members", {"email": "x@acme.test", "role": "developer"})
    assert "owner@acme.test invited you" in mail.outbox[-1].body
    first, second = (re.search(r"token=(\S+)", m.body).group(1) for m in mail.outbox[-2:])
    assert "Invitation not found" in html(Client().get(f"/invitations/accept?token={first}"))
    pending = Invitation.objects.for_tenant(acme.org).get(revoked_at__isnull=True)
    page = html(owner.get("/app/members"))
    assert (
        page.count("<td>x@acme.test</td>") == 1 and f"/app/invitations/{pending.pk}/revoke" in page
    )
    assert owner.post(f"/app/invitations/{pending.pk}/revoke").status_code == 302
    assert "Invitation not found" in html(Client().get(f"/invitations/accept?token={second}"))
    assert owner.post(f"/app/invitations/{pending.pk}/revoke").status_code == 404
    globex = Org("globex")
    with django_capture_on_commit_callbacks(execute=True):
        browser(globex.users["owner"]).post("/app/members", {"email": "y@g.test", "role": "viewer"})
    theirs = Invitation.objects.for_tenant(globex.org).get()
    assert owner.post(f"/app/invitations/{theirs.pk}/revoke").status_code == 404


def test_only_owners_revoke_an_invitation_to_the_owner_role(
    acme, django_capture_on_commit_callbacks
):
    from saas.tenancy.models import AuditEvent, Invitation

    with django_capture_on_commit_callbacks(execute=True):
        browser(acme.users["owner"]).post("/app/members", {"email": "o@acme.test", "role": "owner"})
    pending = Invitation.objects.for_tenant(acme.org).get(revoked_at__isnull=True)
    r = browser(acme.users["admin"]).post(f"/app/invitations/{pending.pk}/revoke")
    assert r.status_code == 409 and "Only an owner" in html(r)
    assert Invitation.objects.for_tenant(acme.org).get(pk=pending.pk).revoked_at is None
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invitation.revoked")
    r = browser(acme.users["owner"]).post(f"/app/invitations/{pending.pk}/revoke")
    assert r.status_code == 302


def test_admins_are_not_offered_the_owner_role(acme):
    page = html(browser(acme.users["admin"]).get("/app/members"))
    assert '<option value="owner"' not in page
    assert '<option value="owner"' in html(browser(acme.users["owner"]).get("/app/members"))
