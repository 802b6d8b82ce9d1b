"""Dataset pages (saas/dashboard/views/datasets.py): uploads, their error pages that keep the
input, the dataset page's chart, samples and thumbnails.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import image_zip, png_bytes, small_text_rows, text_csv

from .conftest import browser, html
from .conftest import named_file as _file


def test_bad_csv_lists_the_problems_with_the_offending_rows_and_keeps_the_input(acme):
    c = browser(acme.users["developer"])
    data = b"text,label\nfine,a\nfine too,a\n,b\nlonely,c\nok,b\n"
    r = c.post(
        "/app/datasets/new",
        {"file": _file(data, "bad.csv"), "task": "text-classification", "name": "My reviews"},
    )
    assert r.status_code == 400
    page = html(r)
    assert "nothing was stored" in page
    assert "Row on line 4" in page and "<code>,b</code>" in page  # the offending row itself
    assert "c" in page and "at least 2" in page
    assert 'value="My reviews"' in page
    from saas.datasets.models import Dataset

    assert Dataset.objects.for_tenant(acme.org).count() == 0


@pytest.mark.parametrize(
    "post, message",
    [
        ({}, "This field is required"),
        ({"file": ("x.csv", b""), "task": "text-classification"}, "empty"),
        ({"file": ("x.csv", b"text,label\na,b\n"), "task": "sound"}, "valid choice"),
        ({"file": ("x.csv", b"a,b\n1,2\n3,4\n"), "task": "text-classification"}, "text"),
        ({"file": ("x.zip", b"not a zip"), "task": "image-classification"}, "ZIP"),
    ],
)
def test_upload_bad_input_is_a_4xx_page_with_a_plain_message(acme, post, message):
    c = browser(acme.users["owner"])
    data = {k: (_file(v[1], v[0]) if isinstance(v, tuple) else v) for k, v in post.items()}
    r = c.post("/app/datasets/new", data)
    assert 400 <= r.status_code < 500
    assert message.lower() in html(r).lower()


def test_upload_is_refused_over_the_size_limit(acme, settings):
    settings.TRAINYARD_MAX_UPLOAD_BYTES = 100
    c = browser(acme.users["owner"])
    r = c.post(
        "/app/datasets/new", {"file": _file(b"x" * 500, "x.csv"), "task": "text-classification"}
    )
    assert r.status_code == 400 and "the limit is 100 bytes" in html(r)


def test_htmx_upload_redirects_the_browser_to_the_dataset(acme):
    c = browser(acme.users["owner"])
    r = c.post(
        "/app/datasets/new",
        {"file": _file(text_csv(small_text_rows()), "r.csv"), "task": "text-classification"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and r["HX-Redirect"].startswith("/app/datasets/ds_")


def test_image_dataset_page_has_a_thumbnail_grid(acme):
    from PIL import Image

    c = browser(acme.users["owner"])
    files = {
        f"{cls}/{i}.png": png_bytes(40 * i + 10 * j) for j, cls in enumerate("ab") for i in range(3)
    }
    r = c.post(
        "/app/datasets/new",
        {"file": _file(image_zip(files), "imgs.zip"), "task": "image-classification"},
    )
    assert r.status_code == 302
    page = html(c.get(r["Location"]))
    thumbs = re.findall(r'src="(/app/datasets/ds_\w+/thumbnails/\d+\.png)"', page)
    assert len(thumbs) == 6
    img = c.get(thumbs[0])
    assert img["Content-Type"] == "image/png"
    import io

    assert Image.open(io.BytesIO(img.content)).size == (96, 96)
    assert c.get(thumbs[0].replace("/0.png", "/99.png")).status_code == 404


def test_dataset_page_shows_balance_chart_samples_and_report(workspace):
    page = html(workspace.client("viewer").get(f"/app/datasets/{workspace.dataset_id}"))
    assert page.count("<svg") == 1 and "Examples per class" in page
    assert "great film 0" in page  # a sample row
    assert '<th scope="col">Class</th>' in page  # the chart's table for screen readers


def test_a_zip_uploaded_as_text_is_explained(acme):
    r = browser(acme.users["owner"]).post(
        "/app/datasets/new",
        {
            "file": _file(image_zip({"a/1.png": png_bytes()}), "x.zip"),
            "task": "text-classification",
        },
    )
    assert r.status_code == 400 and "ZIP archive" in html(r)
