"""The billing page (saas/dashboard/views/billing.py): usage, charges, the spend cap, checkout
without Stripe.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

from decimal import Decimal

from saas.billing.models import BillingAccount

from .conftest import html


def test_billing_page_shows_usage_charges_and_saves_the_cap(workspace):
    from django.utils import timezone

    from saas.metering.services import usage_record

    usage_record(
        organization_id=workspace.org.org.pk,
        meter="predictions",
        quantity=12,
        occurred_at=timezone.now(),
        source_type="prediction",
        source_id="pred_x",
    )
    c = workspace.client("billing")
    page = html(c.get("/app/billing"))
    assert "12</strong> predictions this period" in page
    assert 'data-testid="usage-predictions"' in page and "Included units" in page
    bad = c.post("/app/billing", {"monthly_spend_cap": "-3"})
    assert bad.status_code == 400 and 'value="-3"' in html(bad)
    assert c.post("/app/billing", {"monthly_spend_cap": "25.50"}).status_code == 302
    account = BillingAccount.objects.for_tenant(workspace.org.org).get()
    assert account.monthly_spend_cap == Decimal("25.50")
    assert "Spend cap 25.50" in html(c.get("/app/billing"))
    # Checkout without Stripe configured is explained, not a 500.
    r = c.post("/app/billing/checkout", {"plan": "pro"}, follow=True)
    assert r.status_code == 200 and "notice error" in html(r)
