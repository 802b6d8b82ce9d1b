"""Stripe sends the customer back to the dashboard's real billing page (it was ``/billing``, a 404).

localstripe models neither Checkout nor the portal, so the URLs are checked where they are
built, and then followed through the real URL configuration and the real page.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client

from saas.billing.stripe_sync import _billing_page_url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["checkout=success", "checkout=cancelled", ""])
def test_return_urls_reach_the_billing_page(acme, settings, query):
    settings.TRAINYARD_PUBLIC_URL = "https://app.trainyard.example/"
    url = _billing_page_url(query)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "https://app.trainyard.example"
    assert parts.query == query
    c = Client(HTTP_ACCEPT="text/html")
    c.force_login(acme.users["billing"])
    r = c.get(parts.path + (f"?{parts.query}" if parts.query else ""))
    assert r.status_code == 200, (url, r.status_code)
    assert b"billing" in r.content.lower()
