"""API key pages (saas/dashboard/views/keys.py): the secret shown once, revoking, form
errors, "my keys only" for developers, a reloaded form creating no second key.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import re

from django.test import Client

from saas.apikeys.models import ApiKey

from .conftest import html


def test_key_secret_shown_once_and_revoked_with_confirmation(workspace):
    c = workspace.client("developer")
    r = c.post("/app/api-keys", {"name": "ci", "scopes": ["models:predict", "training:read"]})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    secret = re.search(r'data-testid="new-secret">(ty_live_\S+)</div>', html(r)).group(1)
    key = ApiKey.objects.for_tenant(workspace.org.org).get()
    assert key.scopes == ["models:predict", "training:read"]
    listing = html(c.get("/app/api-keys"))
    assert secret not in listing and key.prefix in listing and "Yes, revoke" in listing
    assert c.post(f"/app/api-keys/{key.pk}/revoke").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    api = Client().get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == 401


def test_key_form_errors_and_developers_see_only_their_keys(workspace):
    dev = workspace.client("developer")
    r = dev.post("/app/api-keys", {"name": "", "scopes": ["nope"]})
    assert r.status_code == 400 and "valid choice" in html(r)
    workspace.client("admin").post("/app/api-keys", {"name": "admin key", "scopes": ["usage:read"]})
    assert "admin key" not in html(dev.get("/app/api-keys"))
    assert "admin key" in html(workspace.client("owner").get("/app/api-keys"))
    admin_key = ApiKey.objects.for_tenant(workspace.org.org).get()
    assert dev.post(f"/app/api-keys/{admin_key.pk}/revoke").status_code == 404


def test_reloading_the_new_key_page_does_not_create_a_second_key(workspace):
    c = workspace.client("developer")
    form = {"name": "ci", "scopes": ["models:predict"], "form_token": "tok-1"}
    assert c.post("/app/api-keys", form).status_code == 200
    again = c.post("/app/api-keys", form)  # the browser re-posts on reload
    assert again.status_code == 302
    assert ApiKey.objects.for_tenant(workspace.org.org).count() == 1
    assert "already created" in html(c.get("/app/api-keys"))


def test_a_key_cannot_be_created_already_expired(workspace):
    r = workspace.client("developer").post(
        "/app/api-keys",
        {"name": "old", "scopes": ["models:predict"], "expires_at": "2020-01-01T00:00"},
    )
    assert r.status_code == 400 and "in the future" in html(r)
    assert ApiKey.objects.for_tenant(workspace.org.org).count() == 0
