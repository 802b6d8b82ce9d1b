"""Support sessions: staff act as a tenant user (hijack), read-only unless elevated, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from saas.tenancy.models import AuditEvent, SupportSession


@pytest.fixture
def staff(db):
    u = get_user_model().objects.create_user(
        username="ops", email="ops@trainyard.test", password="x" * 12
    )
    u.is_staff = True
    u.save()
    c = APIClient()
    c.force_login(u)
    return c


@pytest.mark.django_db
def test_staff_start_with_reason_acts_as_user_and_audits(acme, staff):
    r = staff.post(
        "/console/support/start", {"email": "viewer@acme.test", "reason": "ticket 1234 debugging"}
    )
    assert r.status_code == 302
    assert SupportSession.objects.get().user == acme.users["viewer"]
    assert AuditEvent.objects.for_tenant(acme.org).filter(action="support.session_started").exists()


@pytest.mark.django_db
def test_no_reason_is_400_and_no_session(acme, staff):
    r = staff.post("/console/support/start", {"email": "viewer@acme.test", "reason": "short"})
    assert r.status_code == 400
    assert not SupportSession.objects.exists()


def _start(staff, email="owner@acme.test", elevated=False):
    data = {"email": email, "reason": "ticket 1234 debugging the job page"}
    if elevated:
        data["elevated"] = "on"
    return staff.post("/console/support/start", data)


@pytest.mark.django_db
def test_the_banner_shows_while_it_lasts(acme, staff):
    _start(staff)
    page = staff.get("/app/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Support session" in html and "ops@trainyard.test" in html and "read-only" in html


@pytest.mark.django_db
@pytest.mark.parametrize("flag", ["is_staff", "is_superuser"])
def test_staff_and_superusers_cannot_be_impersonated(acme, staff, flag):
    target = acme.users["viewer"]
    setattr(target, flag, True)
    target.save()
    r = _start(staff, email="viewer@acme.test")
    assert r.status_code == 403
    assert not SupportSession.objects.exists()


@pytest.mark.django_db
def test_a_tenant_owner_cannot_start_a_support_session(acme):
    owner = acme.session("owner")
    r = owner.post("/console/support/start", {"email": "viewer@acme.test", "reason": "x" * 20})
    assert r.status_code == 404
    assert not SupportSession.objects.exists()


@pytest.mark.django_db
def test_read_only_refuses_writes_on_the_dashboard_and_the_api(acme, staff):
    from saas.apikeys.models import ApiKey

    _start(staff)
    before = ApiKey.objects.for_tenant(acme.org).count()
    api = staff.post("/v1/api-keys", {"name": "sneaky"}, format="json")
    assert api.status_code == 403
    assert api["Content-Type"] == "application/problem+json"
    assert "read-only" in api.json()["detail"]
    page = staff.post("/app/api-keys", {"name": "sneaky"})
    assert page.status_code == 403
    assert ApiKey.objects.for_tenant(acme.org).count() == before
    assert staff.get("/app/api-keys").status_code == 200  # reading is fine


@pytest.mark.django_db
def test_elevated_sessions_write_and_the_audit_names_the_staff_user(acme, staff):
    _start(staff, elevated=True)
    resp = staff.post("/v1/api-keys", {"name": "made by support"}, format="json")
    assert resp.status_code == 201, resp.content
    event = AuditEvent.objects.for_tenant(acme.org).filter(action="api_key.created").latest("pk")
    assert event.actor_user_id == acme.users["owner"].pk
    ops = get_user_model().objects.get(email="ops@trainyard.test")
    assert event.data["impersonator_id"] == ops.pk


@pytest.mark.django_db
def test_end_now_releases_and_is_audited(acme, staff):
    _start(staff)
    r = staff.post("/hijack/release/", {"next": "/console/support"})
    assert r.status_code == 302
    session = SupportSession.objects.get()
    assert session.ended_how == "released" and session.ended_at is not None
    ended = AuditEvent.objects.for_tenant(acme.org).get(action="support.session_ended")
    assert ended.data["how"] == "released"
    assert staff.get("/console/support").status_code == 200  # back to the staff user


@pytest.mark.django_db
def test_the_time_box_ends_the_session(acme, staff):
    import datetime

    from django.utils import timezone

    _start(staff)
    SupportSession.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    r = staff.get("/app/")
    assert r.status_code == 302 and r["Location"] == "/console/support"
    session = SupportSession.objects.get()
    assert session.ended_how == "expired"
    assert (
        AuditEvent.objects.for_tenant(acme.org)
        .filter(action="support.session_ended", data__how="expired")
        .exists()
    )
    assert staff.get("/console/support").status_code == 200  # the staff user again


@pytest.mark.django_db
def test_an_api_call_after_the_time_box_gets_a_401_problem_not_a_redirect(acme, staff):
    import datetime

    from django.utils import timezone

    _start(staff)
    SupportSession.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    r = staff.get("/v1/datasets")
    assert r.status_code == 401 and r["Content-Type"] == "application/problem+json"
    assert r.json()["type"].endswith("support-session-expired")
    assert SupportSession.objects.get().ended_how == "expired"
    assert staff.get("/console/support").status_code == 200  # the staff user again
