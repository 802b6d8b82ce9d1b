"""The operator console in a real browser (Debian's Chromium driven by Playwright) against
pytest-django's live server on the real PostgreSQL and Redis.

Walks every console page as staff, acts on a tenant, and shows a tenant owner gets the plain 404.
Screenshots go to ``$TRAINYARD_SCREENSHOTS`` (default: a pytest temporary folder, printed).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from saas.billing.services import billing_plan_change
from saas.common.actor import Actor
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.tenancy.models import Membership, Organization
from saas.tenancy.services.organizations import organization_create
from tests.browser_support import browser_page, chromium_browser, screenshots_dir, snap

# serialized_rollback: the live server's flush at teardown re-creates content types and
# permissions; tests after it that restore serialized data would then hit duplicates.
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots_dir(tmp_path_factory, "console")


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def page(chromium, live_server):
    with browser_page(
        chromium, base_url=live_server.url, width=1360, height=900, timeout_ms=20_000
    ) as pg:
        yield pg


@pytest.fixture
def world():
    """Two tenants (one with an owner whose password we know) and a staff operator."""
    User = get_user_model()
    staff = User.objects.create_user(
        username="ops@trainyard.test", email="ops@trainyard.test", password=PASSWORD, is_staff=True
    )
    acme = organization_create(
        slug="acme", name="Acme Corp", owner_email="owner@acme.test", actor=Actor.system()
    )
    globex = organization_create(
        slug="globex", name="Globex", owner_email="owner@globex.test", actor=Actor.system()
    )
    billing_plan_change(organization=globex, plan_code="pro", actor=Actor.system())
    # This month's usage, so the economics page has figures: acme (free) costs money,
    # globex (pro) makes some.
    now = timezone.now()
    for org, meter, qty, cost in [
        (acme, Meter.TRAINING_COMPUTE_SECONDS, 3000, "0.06"),
        (acme, Meter.PREDICTIONS, 9000, "0.41"),
        (acme, Meter.STORAGE_GB_HOURS, 700, "0.02"),
        (globex, Meter.TRAINING_COMPUTE_SECONDS, 90000, "1.80"),
        (globex, Meter.TRAINING_GPU_SECONDS, 3600, "2.88"),
        (globex, Meter.PREDICTIONS, 400000, "3.10"),
    ]:
        usage_record(
            organization_id=org.pk,
            meter=meter,
            quantity=Decimal(qty),
            occurred_at=now,
            source_type="test",
            source_id=f"{meter}-{qty}",
            compute_cost=Decimal(cost),
            dimensions={"cpu_seconds": float(Decimal(cost) / Decimal("0.00002"))}
            if meter == Meter.PREDICTIONS
            else {},
        )
    owner = Membership.objects.get(organization=acme).user
    owner.set_password(PASSWORD)
    owner.save()
    return {"staff": staff, "acme": acme, "owner": owner}


def admin_sign_in(page, email: str) -> None:
    page.goto("/console/")
    assert "/admin/login/" in page.url  # anonymous: sent to the sign-in, then back
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/console/")


def test_staff_walk_the_console_and_act_on_a_tenant(page, world, shots):
    admin_sign_in(page, world["staff"].email)
    page.get_by_role("heading", name="At a glance").wait_for()
    snap(page, shots, "01-at-a-glance")

    for path, name in [
        ("/console/jobs", "02-jobs"),
        ("/console/tenants", "03-tenants"),
        ("/console/economics", "05-economics"),
        ("/console/support", "06-support"),
    ]:
        resp = page.goto(path)
        assert resp is not None and resp.status == 200, (path, resp and resp.status)
        snap(page, shots, name)

    org = world["acme"]
    page.goto(f"/console/tenants/{org.pk}")
    page.get_by_role("heading", name="Acme Corp (acme)").wait_for()
    snap(page, shots, "04-tenant")
    # Act: suspend with a reason, through the page's own form.
    page.locator("input[name=reason]").first.fill("chargeback, ticket 4411")
    page.get_by_role("button", name="Suspend").click()
    page.get_by_text("status suspended").wait_for()
    snap(page, shots, "04b-tenant-suspended")
    org.refresh_from_db()
    assert org.status == "suspended"


def test_a_tenant_owner_gets_404_in_the_console(page, world, shots):
    page.goto("/login")
    page.get_by_label("Email").fill(world["owner"].email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/app/**")
    for path in ("/console/", "/console/tenants", f"/console/tenants/{world['acme'].pk}"):
        resp = page.goto(path)
        assert resp is not None and resp.status == 404, path
    snap(page, shots, "07-owner-404")
    assert Organization.objects.filter(pk=world["acme"].pk, status="active").exists()
