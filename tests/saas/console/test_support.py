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
