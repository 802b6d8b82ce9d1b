"""Model pages (saas/dashboard/views/models.py): the code snippets and the try-it box.

A real worker training and the data plane predicting through these pages are in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import pytest

from saas.metering.models import UsageEvent

from .conftest import browser, html


def test_model_page_has_snippets_with_this_host(workspace):
    page = html(workspace.client("developer").get(f"/app/models/{workspace.model.pk}"))
    assert f"http://testserver/v1/models/{workspace.model.pk}/predict" in page
    assert "Authorization: Bearer $TRAINYARD_API_KEY" in page and "import requests" in page


@pytest.mark.parametrize("data, message", [({}, "Type a text"), ({"text": "   "}, "Type a text")])
def test_try_it_bad_input_is_a_400_fragment(workspace, data, message):
    r = workspace.client("developer").post(
        f"/app/models/{workspace.model.pk}/try", data, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 400 and message in html(r)
    assert html(r).lstrip().startswith('<div id="prediction"')


def test_try_it_without_the_data_plane_explains_the_503(workspace):
    # Nothing listens at TRAINYARD_SERVE_URL (tests/conftest.py): the page says so, bills nothing.
    r = workspace.client("developer").post(
        f"/app/models/{workspace.model.pk}/try", {"text": "fine"}, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 503
    assert "The prediction service did not answer" in html(r)
    assert html(r).lstrip().startswith('<div id="prediction"')
    assert not UsageEvent.objects.for_tenant(workspace.org.org).filter(meter="predictions").exists()


def test_try_it_on_another_tenants_model_is_a_404_without_asking_the_data_plane(workspace, globex):
    r = browser(globex.users["owner"]).post(
        f"/app/models/{workspace.model.pk}/try", {"text": "fine"}, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 404
