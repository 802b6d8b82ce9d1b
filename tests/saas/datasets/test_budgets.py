"""Upload budgets decided before the costly work, and the plan's class limit.

The attack files of issue 11 are built here at their real size (nothing is committed as a
binary): a ZIP of 1,300 blank 6000x6000 PNGs and a 50 MB CSV of 5.9 M tiny rows. Through the
API both are a 413 naming the budget; their validation alone takes under 2 s (timed on the
web tier's validation functions: the rest of such a request is Django reading the multipart
body, which the test client also has to build, and which took 121 s and 12 s before).
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from saas.common.errors import ValidationFailed
from saas.datasets.models import Dataset
from saas.datasets.validation import BudgetExceeded, validate_image_zip, validate_text_csv
from tests.conftest import image_zip, png_bytes, set_plan_limits, small_text_rows, text_csv, upload
from tests.saas.datasets.test_upload import assert_nothing_created, assert_problem

pytestmark = pytest.mark.django_db


def _stored_zip(members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, blob in members:
            zf.writestr(name, blob)
    return buf.getvalue()


def test_the_reported_zip_of_36_mpx_blank_pngs_is_refused_from_headers(tenant, settings):
    blob = png_bytes(0, (6000, 6000))
    data = _stored_zip([(f"c{i % 2}/{i}.png", blob) for i in range(1300)])
    assert len(data) > 40 * 2**20  # the reported 45 MB
    start = time.perf_counter()
    with pytest.raises(BudgetExceeded):
        validate_image_zip(io.BytesIO(data), max_classes=100)
    elapsed = time.perf_counter() - start
    r = upload(tenant.client, data, task="image-classification", name="attack.zip")
    body = assert_problem(r, 413, "pixels")
    assert body["budget"] == "image_pixels" and body["value"] == 36_000_000
    assert body["setting"] == "TRAINYARD_DATASET_MAX_IMAGE_PIXELS"
    assert body["limit"] == settings.TRAINYARD_DATASET_MAX_IMAGE_PIXELS
    assert "1300 image(s)" in body["detail"]
    assert len(body["errors"]) == 51  # 50 listed, then "… and 1250 more"
    assert elapsed < 2.0, elapsed
    assert_nothing_created(tenant, settings)


def test_an_archive_over_the_pixel_budget_is_refused_before_decoding(tenant, settings):
    settings.TRAINYARD_ZIP_MAX_TOTAL_PIXELS = 10_000
    files = {f"c{i % 2}/{i}.png": png_bytes(i, (50, 50)) for i in range(5)}  # 12,500 px
    r = upload(tenant.client, image_zip(files), task="image-classification", name="x.zip")
    body = assert_problem(r, 413, "pixels in all")
    assert body["budget"] == "archive_pixels"
    assert body["limit"] == 10_000 and body["value"] == 12_500
    assert_nothing_created(tenant, settings)


def test_the_reported_csv_of_5_9_m_rows_is_refused_before_parsing(tenant, settings):
    block = b"".join(b"t%d,%d\n" % (i, i % 2) for i in range(100_000))
    data = b"text,label\n" + block * 59  # 5.9 M rows
    assert len(data) > 45 * 2**20
    settings.TRAINYARD_MAX_UPLOAD_BYTES = 64 * 2**20  # whatever the byte limit, lines decide
    start = time.perf_counter()
    with pytest.raises(BudgetExceeded):
        validate_text_csv(io.BytesIO(data), max_classes=100)
    elapsed = time.perf_counter() - start
    r = upload(tenant.client, data)
    body = assert_problem(r, 413, "lines")
    assert body["budget"] == "csv_lines" and body["value"] == 5_900_001
    assert body["limit"] == settings.TRAINYARD_CSV_MAX_LINES
    assert elapsed < 2.0, elapsed
    assert_nothing_created(tenant, settings)


def test_a_csv_at_the_line_budget_is_admitted(tenant, settings):
    data = text_csv(small_text_rows(12))  # 24 rows + header = 25 lines
    settings.TRAINYARD_CSV_MAX_LINES = 25
    r = upload(tenant.client, data)
    assert r.status_code == 201, r.content
    settings.TRAINYARD_CSV_MAX_LINES = 24
    r = upload(tenant.client, data)
    assert assert_problem(r, 413, "lines")["value"] == 25


def test_validation_time_backstop(tenant, settings):
    settings.TRAINYARD_VALIDATION_MAX_SECONDS = 0.0
    rows = [(f"text {i}", f"c{i % 2}") for i in range(5000)]
    r = upload(tenant.client, text_csv(rows))
    body = assert_problem(r, 413, "longer than")
    assert body["budget"] == "validation_seconds"
    assert_nothing_created(tenant, settings)


def test_a_large_csv_is_streamed_from_disk_and_reported_as_before(tenant, settings):
    """Past Django's 2 MiB in-memory limit the upload is a temporary file: read as a stream."""
    rows = [(f"review number {i} " + "x" * 60, f"c{i % 3}") for i in range(40_000)]
    rows += [("review number 7 " + "x" * 60, "c1")] * 3  # repeats of one text
    data = text_csv(rows)
    assert len(data) > 2 * 2**20
    r = upload(tenant.client, data)
    assert r.status_code == 201, r.content
    ds = r.json()
    assert ds["num_examples"] == 40_003 and len(ds["classes"]) == 3
    assert ds["report"]["duplicate_texts"] == 3
    assert ds["report"]["duplicate_examples"] == ["review number 7 " + "x" * 60]


def test_a_non_utf8_byte_deep_in_a_streamed_csv_names_its_line(tenant, settings):
    head = text_csv([(f"text {i} " + "y" * 40, f"c{i % 2}") for i in range(60_000)])
    data = head + b"caf\xe9,c0\n"
    r = upload(tenant.client, data)
    body = assert_problem(r, 400, "not utf-8", "0xe9", "line 60002")
    assert body["errors"][0]["line"] == 60_002
    assert_nothing_created(tenant, settings)


# --- the plan's class limit -----------------------------------------------------------------


def test_a_csv_over_the_plans_class_limit_is_422_naming_limit_and_count(tenant, settings):
    set_plan_limits("free", max_classes=5)
    rows = [(f"text {i}", f"class{i % 7}") for i in range(28)]
    r = upload(tenant.client, text_csv(rows))
    body = assert_problem(r, 422, "7 classes", "at most 5")
    assert body["type"].endswith("/too-many-classes")
    assert body["limit"] == 5 and body["count"] == 7
    assert_nothing_created(tenant, settings)


def test_the_reported_2000_class_csv_is_refused_on_the_free_plan(tenant, settings):
    rows = [(f"example {i}", f"label-{i % 2000}") for i in range(4000)]
    r = upload(tenant.client, text_csv(rows))
    body = assert_problem(r, 422)
    assert body["limit"] == 100 and body["count"] == 2000
    assert_nothing_created(tenant, settings)


def test_a_zip_over_the_class_limit_is_422_before_decoding(tenant, settings):
    set_plan_limits("free", max_classes=2)
    files = {f"c{i % 3}/{i}.png": png_bytes(i) for i in range(6)}
    r = upload(tenant.client, image_zip(files), task="image-classification", name="x.zip")
    body = assert_problem(r, 422)
    assert body["limit"] == 2 and body["count"] == 3


def test_at_the_class_limit_is_admitted_and_another_plan_has_its_own(tenant, settings):
    set_plan_limits("free", max_classes=3)
    rows = [(f"text {i}", f"class{i % 3}") for i in range(12)]
    assert upload(tenant.client, text_csv(rows)).status_code == 201
    assert Dataset.objects.for_tenant(tenant.org).count() == 1


def test_the_seeded_plans_class_limits():
    from saas.billing.models import Plan

    limits = dict(Plan.objects.values_list("code", "max_classes"))
    assert limits == {"free": 100, "pro": 1000, "enterprise": 5000}


def test_the_dashboard_upload_shows_the_class_limit(acme, settings):
    set_plan_limits("free", max_classes=2)
    c = acme.session("owner")
    f = io.BytesIO(text_csv([(f"t {i}", f"k{i % 3}") for i in range(9)]))
    f.name = "d.csv"
    r = c.post("/app/datasets/new", {"file": f, "task": "text-classification", "name": "many"})
    assert r.status_code == 422
    assert "3 classes" in r.content.decode() and "at most 2" in r.content.decode()
    assert Dataset.objects.for_tenant(acme.org).count() == 0


def test_other_formats_are_refused_without_being_decoded(tenant, settings):
    """A GIF is not counted by the header pass (JPEG and PNG only), so it must not be
    decoded either: 40 blank 4000x4000 GIFs are refused as "not supported" at once."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4000, 4000)).save(buf, format="GIF")
    files = {f"c{i % 2}/{i}.png": buf.getvalue() for i in range(40)}
    start = time.perf_counter()
    with pytest.raises(ValidationFailed) as exc:
        validate_image_zip(io.BytesIO(image_zip(files)))
    assert time.perf_counter() - start < 2.0
    assert "GIF images are not supported" in exc.value.errors[0]["message"]


def test_the_dashboard_upload_names_a_budget(acme, settings):
    settings.TRAINYARD_CSV_MAX_LINES = 10
    c = acme.session("owner")
    f = io.BytesIO(text_csv(small_text_rows(12)))
    f.name = "d.csv"
    r = c.post("/app/datasets/new", {"file": f, "task": "text-classification", "name": "big"})
    assert r.status_code == 413
    assert "25 lines; the limit is 10" in r.content.decode()
    assert Dataset.objects.for_tenant(acme.org).count() == 0
