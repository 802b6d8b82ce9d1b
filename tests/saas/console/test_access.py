"""Every console URL, walked: a tenant owner (or any non-staff user) gets 404, anonymous is sent
to the admin sign-in, staff get the page. New pages are picked up from ``saas.console.urls``."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, reverse

from saas.console import urls as console_urls


def _console_paths() -> list[tuple[str, str]]:
    """(name, path) of every console route, with a placeholder for each URL argument."""
    out = []
    for p in console_urls.urlpatterns:
        assert isinstance(p, URLPattern)
        kwargs = {}
        for name, conv in p.pattern.converters.items():
            kwargs[name] = 1 if type(conv).__name__ == "IntConverter" else "zz_missing"
        out.append((p.name, reverse(f"console:{p.name}", kwargs=kwargs)))
    return out


PATHS = _console_paths()


def test_every_console_view_is_a_staff_page():
    """A page that forgot ``staff_page`` would be open to tenants: refuse it here."""
    for p in console_urls.urlpatterns:
        assert getattr(p.callback, "console_page", False), p.name


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), PATHS, ids=[n for n, _ in PATHS])
@pytest.mark.parametrize("role", ["owner", "admin", "billing"])
def test_tenant_members_get_404_on_every_console_url(acme, name, path, role):
    client = acme.session(role)
    for method in ("get", "post"):
        resp = getattr(client, method)(path)
        assert resp.status_code == 404, (method, path, resp.status_code)
        # The very 404 a missing page gets: nothing says the console is there.
        missing = getattr(client, method)(path.replace("/console/", "/nothing-here/", 1))
        assert resp["Content-Type"] == missing["Content-Type"]
        assert resp.content.replace(b"/console/", b"/nothing-here/", 1) == missing.content


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "path"), PATHS, ids=[n for n, _ in PATHS])
def test_anonymous_is_sent_to_the_admin_sign_in(client, name, path):
    resp = client.get(path)
    assert resp.status_code == 302
    assert resp["Location"].startswith("/admin/login/?next=")


@pytest.mark.django_db
def test_staff_see_the_console(console):
    resp = console.get("/console/")
    assert resp.status_code == 200
    assert b"At a glance" in resp.content


@pytest.mark.django_db
def test_inactive_staff_get_404(console, operator):
    operator.is_active = False
    operator.save()
    resp = console.get("/console/")
    assert resp.status_code in (302, 404)
