"""The console's state-changing routes (retry a job, grant credit) refuse a POST without the
CSRF token and any GET, with no side effect: the session cookie alone must never be enough."""

from __future__ import annotations

import pytest
from django.test import Client

from saas.billing.models import CreditLedgerEntry
from saas.jobs.models import TrainingJob
from saas.tenancy.models import AuditEvent
from tests.saas.console.test_ops_actions import _failed

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict(operator) -> Client:
    """The operator's session, with Django's CSRF check on (the test client skips it)."""
    c = Client(enforce_csrf_checks=True)
    c.force_login(operator)
    return c


def test_retry_without_the_csrf_token_is_a_403_and_queues_nothing(strict, tenant):
    old = _failed(tenant)
    resp = strict.post(f"/console/jobs/{old.pk}/retry", {"reason": "forged"})
    assert resp.status_code == 403
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 1
    assert strict.get(f"/console/jobs/{old.pk}/retry?reason=forged").status_code == 405
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 1
    assert not AuditEvent.objects.for_tenant(tenant.org).filter(action="training_job.retried")


def test_grant_credit_without_the_csrf_token_is_a_403_and_grants_nothing(strict, tenant):
    path = f"/console/tenants/{tenant.org.pk}/grant_credit"
    assert strict.post(path, {"amount": "10.00", "reason": "forged"}).status_code == 403
    assert strict.get(f"{path}?amount=10.00&reason=forged").status_code == 405
    assert not CreditLedgerEntry.objects.for_tenant(tenant.org).exists()
    assert not AuditEvent.objects.for_tenant(tenant.org).filter(action="billing.credit_granted")


def test_with_the_token_the_same_post_works(strict, tenant):
    path = f"/console/tenants/{tenant.org.pk}"
    strict.get(path)  # the page sets the CSRF cookie its forms post back
    token = strict.cookies["csrftoken"].value
    resp = strict.post(
        f"{path}/grant_credit",
        {"amount": "10.00", "reason": "outage", "csrfmiddlewaretoken": token},
    )
    assert resp.status_code == 302
    assert CreditLedgerEntry.objects.for_tenant(tenant.org).count() == 1
