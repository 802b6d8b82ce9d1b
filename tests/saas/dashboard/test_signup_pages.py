"""Sign-up, sign-in, password reset, invitation links and switching the current organisation
(saas/dashboard/views/signup.py and auth.py) through Django's test client on PostgreSQL and Redis.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from saas.billing.selectors import plan_limits_get
from saas.billing.services import billing_account_get
from saas.tenancy.models import Membership, Organization
from tests.conftest import Org

from .conftest import browser, html

PASSWORD = "correct-horse-battery-9"


def confirm_link(body: str) -> str:
    return re.search(r"http://localhost:8000(/signup/confirm/\S+)", body).group(1)


def test_sign_up_creates_a_user_and_an_owned_org_on_the_free_plan(
    db, django_capture_on_commit_callbacks
):
    c = Client()
    with django_capture_on_commit_callbacks(execute=True):
        r = c.post(
            "/signup",
            {"email": "Ada@Example.com", "password": PASSWORD, "organization": "Ada Robotics"},
        )
    assert r.status_code == 302 and r["Location"] == "/signup/sent"
    user = get_user_model().objects.get(email__iexact="ada@example.com")
    assert not user.is_active  # not before the address is confirmed
    refused = Client().post("/login", {"username": "ada@example.com", "password": PASSWORD})
    assert refused.status_code == 200 and "_auth_user_id" not in refused.wsgi_request.session
    m = Membership.objects.get(user=user)
    assert m.role == "owner" and m.organization.name == "Ada Robotics"
    assert plan_limits_get(organization=m.organization).plan == "free"
    assert billing_account_get(organization=m.organization).plan.code == "free"
    [msg] = mail.outbox
    assert [a.lower() for a in msg.to] == ["ada@example.com"]
    link = confirm_link(msg.body)
    assert "Confirm your account" in html(c.get(link))
    assert "not the password" in html(c.post(link, {"password": "wrong-password-1"}))
    r = c.post(link, {"password": PASSWORD})
    assert r.status_code == 302 and r["Location"] == "/app/"
    page = html(c.get("/app/"))
    assert "Ada Robotics" in page and "Getting started" in page
    assert "expired" in html(Client().get(link))  # used once


@pytest.mark.parametrize(
    "data, field, message",
    [
        (
            {"email": "new@x.test", "password": "12345678", "organization": "X"},
            "password",
            "numeric",
        ),
        (
            {"email": "new@x.test", "password": "short", "organization": "X"},
            "password",
            "too short",
        ),
        (
            {"email": "not-an-email", "password": PASSWORD, "organization": "X"},
            "email",
            "valid email",
        ),
        (
            {"email": "new@x.test", "password": PASSWORD, "organization": "!!!"},
            "organization",
            "letter",
        ),
    ],
)
def test_sign_up_errors_keep_the_input(db, data, field, message):
    r = Client().post("/signup", data)
    assert r.status_code == 200
    page = html(r)
    assert message in page.lower()
    assert f'id="id_{field}_error"' in page or "errorlist" in page
    assert f'value="{data["organization"]}"' in page  # kept
    assert Organization.objects.count() == 0


def test_log_in_by_email_in_any_case_and_log_out(db):
    get_user_model().objects.create_user(username="bo@x.test", email="bo@x.test", password=PASSWORD)
    c = Client()
    bad = c.post("/login", {"username": "bo@x.test", "password": "wrong"})
    assert bad.status_code == 200 and "do not match" in html(bad)
    assert 'value="bo@x.test"' in html(bad)
    assert c.post("/login", {"username": "BO@X.TEST", "password": PASSWORD}).status_code == 302
    assert c.get("/app/").status_code == 403  # signed in, but in no organisation
    assert c.post("/logout").status_code == 302
    assert c.get("/app/")["Location"].startswith("/login")


def test_password_reset_by_email_also_for_accounts_without_a_password(db):
    # Owners created by an operator or the API have no usable password: the link sets one.
    org = Org("acme")
    owner = org.users["owner"]
    assert not owner.has_usable_password()
    c = Client()
    r = c.post("/password-reset", {"email": owner.email.upper()})
    assert r.status_code == 302 and r["Location"] == "/password-reset/sent"
    assert len(mail.outbox) == 1
    link = re.search(r"http://localhost:8000(/password-reset/\S+)", mail.outbox[0].body).group(1)
    form = c.get(link, follow=True)
    assert "Choose a new password" in html(form)
    done = c.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert done.status_code == 302
    assert c.post("/login", {"username": owner.email, "password": PASSWORD}).status_code == 302
    # An unknown address gets the same answer and no email.
    assert c.post("/password-reset", {"email": "nobody@x.test"}).status_code == 302
    assert len(mail.outbox) == 1


def test_invitation_link_signs_up_into_the_inviting_org(acme, django_capture_on_commit_callbacks):
    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        r = owner.post("/app/members", {"email": "new@acme.test", "role": "developer"})
    assert r.status_code == 302
    link = re.search(r"http://localhost:8000(/invitations/accept\?token=\S+)", mail.outbox[-1].body)
    page = Client().get(link.group(1))
    assert "developer" in html(page) and "Create an account" in html(page)
    token = link.group(1).split("token=")[1]
    c = Client()
    form = c.get(f"/signup?invitation={token}")
    assert f"Join {acme.org.name}" in html(form)
    r = c.post(f"/signup?invitation={token}", {"email": "new@acme.test", "password": PASSWORD})
    assert r.status_code == 302
    user = get_user_model().objects.get(email="new@acme.test")
    assert list(Membership.objects.filter(user=user).values_list("organization_id", "role")) == [
        (acme.org.pk, "developer")
    ]
    assert Organization.objects.count() == 1  # no organisation of their own
    assert "Invitation not found" in html(Client().get(link.group(1)))  # used once


def test_signed_in_user_accepts_an_invitation(acme, globex, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        browser(acme.users["owner"]).post(
            "/app/members", {"email": globex.users["viewer"].email, "role": "developer"}
        )
    path = re.search(r"http://localhost:8000(/invitations/accept\?token=\S+)", mail.outbox[-1].body)
    c = browser(globex.users["viewer"])
    page = html(c.get(path.group(1)))
    assert "Accept and join" in page
    token = path.group(1).split("token=")[1]
    assert c.post("/invitations/accept", {"token": token}).status_code == 302
    assert (
        Membership.objects.get(organization=acme.org, user=globex.users["viewer"]).role
        == "developer"
    )
    assert acme.org.name in html(c.get("/app/"))  # the joined organisation is now current
    # Someone else signed in cannot use it (and it is used up anyway).
    other = browser(globex.users["owner"])
    assert other.post("/invitations/accept", {"token": token}).status_code == 404


def test_invitation_for_someone_else_is_refused(acme, django_capture_on_commit_callbacks):
    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/app/members", {"email": "new@acme.test", "role": "viewer"})
    token = re.search(r"token=(\S+)", mail.outbox[-1].body).group(1)
    r = Client().post(
        f"/signup?invitation={token}", {"email": "other@x.test", "password": PASSWORD}
    )
    assert r.status_code == 200 and "This invitation is for new@acme.test" in html(r)


def test_switching_organisation_changes_what_every_page_shows(workspace):
    ws = workspace
    globex = Org("globex")
    user = ws.org.users["developer"]
    Membership.objects.create(organization=globex.org, user=user, role="viewer")
    c = browser(user)
    assert ws.dataset_id in html(c.get("/app/datasets"))
    assert c.post("/app/organization", {"organization": globex.org.pk}).status_code == 302
    page = html(c.get("/app/datasets"))
    assert ws.dataset_id not in page and "globex (viewer)" in page
    assert c.get(f"/app/datasets/{ws.dataset_id}").status_code == 404
    # An organisation the user is not in cannot be chosen.
    third = Org("initech")
    assert c.post("/app/organization", {"organization": third.org.pk}).status_code == 404
    # The API follows the same current organisation.
    assert c.get("/v1/datasets", HTTP_ACCEPT="application/json").json()["data"] == []


def test_account_signup_needs_an_organisation_or_an_invitation(db):
    from saas.common.actor import Actor
    from saas.common.errors import ValidationFailed
    from saas.tenancy.services import account_signup

    with pytest.raises(ValidationFailed):
        account_signup(email="z@x.test", password=PASSWORD, actor=Actor.system())
    assert not get_user_model().objects.filter(email="z@x.test").exists()
    m = account_signup(
        email="z@x.test", password=PASSWORD, organization_name="Zed & Co", actor=Actor.system()
    )
    assert m.role == "owner" and m.organization.slug.startswith("zed-co-")
