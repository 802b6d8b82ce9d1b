"""Model pages (saas/dashboard/views/models.py): the code snippets and the try-it box.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import pytest

from .conftest import html


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


def test_try_it_without_an_inference_worker_explains_the_503(workspace, settings):
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.5
    r = workspace.client("developer").post(
        f"/app/models/{workspace.model.pk}/try", {"text": "fine"}, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 503
    assert "No inference worker answered" in html(r)
    assert html(r).lstrip().startswith('<div id="prediction"')
