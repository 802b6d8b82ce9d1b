"""POST /v1/datasets: the report, and every bad input as a clear problem with nothing stored."""

import io
import struct
import zipfile
import zlib

import pytest

from saas.datasets.models import Dataset
from tests.conftest import image_zip, png_bytes, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def stored_files(settings) -> list:
    root = settings.MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_problem(r, status: int, *needles: str) -> dict:
    assert r.status_code == status, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://") and body["title"]
    text = (body["detail"] + " " + " ".join(e["message"] for e in body.get("errors", []))).lower()
    for needle in needles:
        assert needle.lower() in text, (needle, body)
    return body


def assert_nothing_created(tenant, settings):
    assert Dataset.objects.for_tenant(tenant.org).count() == 0
    assert stored_files(settings) == []


def test_text_upload_report(tenant, settings):
    rows = small_text_rows(12) + [("great film 0", "positive")]  # one exact duplicate
    r = upload(tenant.client, text_csv(rows), name="reviews")
    assert r.status_code == 201, r.content
    ds = r.json()
    assert ds["object"] == "dataset" and ds["id"].startswith("ds_")
    assert ds["num_examples"] == 25
    assert ds["classes"] == {"negative": 12, "positive": 13}
    assert ds["report"]["duplicate_texts"] == 1
    assert ds["report"]["imbalance_ratio"] == pytest.approx(13 / 12, abs=1e-3)
    assert len(ds["sha256"]) == 64 and ds["size_bytes"] > 0
    assert len(stored_files(settings)) == 1
    # and it is listed and readable
    listed = tenant.client.get("/v1/datasets").json()
    assert listed["object"] == "list" and [d["id"] for d in listed["data"]] == [ds["id"]]
    assert tenant.client.get(f"/v1/datasets/{ds['id']}").json()["classes"] == ds["classes"]


def test_small_class_is_a_warning_not_an_error(tenant):
    rows = small_text_rows(12) + [("meh", "neutral"), ("so so", "neutral")]
    r = upload(tenant.client, text_csv(rows))
    assert r.status_code == 201
    assert any("neutral" in w for w in r.json()["report"]["warnings"])


def test_bom_is_accepted(tenant):
    r = upload(tenant.client, b"\xef\xbb\xbf" + text_csv(small_text_rows()))
    assert r.status_code == 201, r.content


def test_custom_columns(tenant):
    data = text_csv([(t, lab) for t, lab in small_text_rows()], header="review,sentiment")
    r = upload(tenant.client, data, text_column="review", label_column="sentiment")
    assert r.status_code == 201, r.content


@pytest.mark.parametrize(
    "data, needles",
    [
        (b"", ["empty"]),
        (b"   \n", ["empty"]),
        (b"text,label\n", ["no data rows"]),
        (
            b"sentence,category\nhello,a\n",
            ["'text'", "'label'", "columns found: 'sentence', 'category'"],
        ),
        (b"text,label\ngood,pos\nbad \xff\xfe here,neg\n", ["not utf-8", "line 3"]),
        (text_csv([("a", "x"), ("b", "x"), ("c", "x")]), ["at least 2 classes", "'x'"]),
        (text_csv(small_text_rows() + [("lonely", "rare")]), ["class 'rare' has 1 example"]),
        (
            text_csv(small_text_rows() + [("", "positive"), ("   ", "negative")]),
            ["line 26", "line 27", "text is empty"],
        ),
        (text_csv(small_text_rows() + [("no label", "")]), ["line 26", "label is empty"]),
        (b'text,label\n"unterminated,pos\n', ["malformed", "line"]),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "missing-columns",
        "non-utf8",
        "single-class",
        "one-example-class",
        "empty-text",
        "empty-label",
        "bad-quoting",
    ],
)
def test_bad_csv(tenant, settings, data, needles):
    r = upload(tenant.client, data)
    assert_problem(r, 400, *needles)
    assert_nothing_created(tenant, settings)


def test_file_over_the_size_limit_is_413(tenant, settings):
    settings.TRAINYARD_MAX_UPLOAD_BYTES = 1000
    r = upload(tenant.client, text_csv(small_text_rows(60)))
    body = assert_problem(r, 413, "limit")
    assert body["limit_bytes"] == 1000
    assert_nothing_created(tenant, settings)


def test_missing_file_and_bad_task(tenant):
    r = tenant.client.post("/v1/datasets", {"task": "text-classification"}, format="multipart")
    assert_problem(r, 400, "file")
    r = upload(tenant.client, text_csv(small_text_rows()), task="audio")
    assert_problem(r, 400, "task")


# ---- images -----------------------------------------------------------------------------


def digit_files(per_class: int = 3) -> dict[str, bytes]:
    return {
        f"digits/{c}/{i}.png": png_bytes(c * 20 + i, (8, 8))
        for c in range(3)
        for i in range(per_class)
    }


def test_image_upload_report(tenant):
    files = digit_files()
    files["digits/0/dup.png"] = files["digits/0/0.png"]
    files["__MACOSX/digits/0/._0.png"] = b"junk"
    r = upload(tenant.client, image_zip(files), task="image-classification", name="d.zip")
    assert r.status_code == 201, r.content
    ds = r.json()
    assert ds["classes"] == {"0": 4, "1": 3, "2": 3}
    assert ds["report"]["duplicate_images"] == 1
    assert ds["report"]["image_sizes"] == {"8x8": 10}
    assert any("only 3 examples" in w for w in ds["report"]["warnings"])


def test_real_digits_zip(tenant):
    from tests.conftest import DATA

    r = upload(
        tenant.client, (DATA / "images/digits_8x8.zip").read_bytes(), task="image-classification"
    )
    assert r.status_code == 201, r.content
    assert r.json()["num_examples"] == 500 and len(r.json()["classes"]) == 10


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (the pixel data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def truncated_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, format="JPEG")
    return buf.getvalue()[:300]


@pytest.mark.parametrize(
    "files, needles",
    [
        ({"../evil/0.png": png_bytes(), "a/1.png": png_bytes()}, ["unsafe", "'..'"]),
        ({"/abs/0.png": png_bytes(), "a/1.png": png_bytes()}, ["unsafe", "absolute"]),
        ({**digit_files(), "digits/1/readme.txt": b"hello"}, ["readme.txt", "not a jpeg or png"]),
        (
            {**digit_files(), "digits/1/broken.jpg": truncated_jpeg()},
            ["broken.jpg", "cannot be decoded"],
        ),
        ({"0.png": png_bytes(), "1.png": png_bytes()}, ["not inside a class folder"]),
        ({"only/0.png": png_bytes(), "only/1.png": png_bytes(1)}, ["at least 2 classes"]),
        (
            {"a/0.png": png_bytes(), "a/1.png": png_bytes(1), "b/0.png": png_bytes(2)},
            ["class 'b' has 1 example"],
        ),
        ({"a/": b""}, ["no image files"]),
    ],
    ids=[
        "dotdot",
        "absolute",
        "non-image",
        "truncated-jpeg",
        "no-class-folder",
        "single-class",
        "one-example-class",
        "empty-zip",
    ],
)
def test_bad_zip(tenant, settings, files, needles):
    r = upload(tenant.client, image_zip(files), task="image-classification", name="x.zip")
    assert_problem(r, 400, *needles)
    assert_nothing_created(tenant, settings)


def test_not_a_zip(tenant, settings):
    r = upload(
        tenant.client, b"PK\x03\x04 definitely not a zip", task="image-classification", name="x.zip"
    )
    assert_problem(r, 400, "not a zip")
    assert_nothing_created(tenant, settings)


def test_zip_bomb_is_stopped_by_the_decompression_budget(tenant, settings):
    settings.TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES = 1_000_000
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/0.png", png_bytes())
        zf.writestr("a/bomb.png", b"\0" * 20_000_000)  # 20 MB of zeros, ~20 KB compressed
    assert len(buf.getvalue()) < 100_000
    r = upload(tenant.client, buf.getvalue(), task="image-classification", name="x.zip")
    body = assert_problem(r, 413, "zip bomb")
    assert body["budget"] == "archive_bytes" and body["limit"] == 1_000_000
    assert body["setting"] == "TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES"
    assert_nothing_created(tenant, settings)


def test_pixel_bomb_is_refused_from_its_header(tenant, settings):
    files = {**digit_files(), "digits/1/huge.png": huge_png_header(30000, 30000)}
    r = upload(tenant.client, image_zip(files), task="image-classification", name="x.zip")
    body = assert_problem(r, 413, "huge.png", "pixel")
    assert body["budget"] == "image_pixels" and body["value"] == 30000 * 30000
    assert_nothing_created(tenant, settings)


def test_too_many_entries(tenant, settings):
    settings.TRAINYARD_ZIP_MAX_ENTRIES = 5
    r = upload(tenant.client, image_zip(digit_files()), task="image-classification", name="x.zip")
    body = assert_problem(r, 413, "entries")
    assert body["budget"] == "archive_entries" and body["limit"] == 5 and body["value"] == 9


def test_delete_dataset(tenant, settings, django_capture_on_commit_callbacks):
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    with django_capture_on_commit_callbacks(execute=True):
        r = tenant.client.delete(f"/v1/datasets/{ds['id']}")
    assert r.status_code == 204
    assert tenant.client.get(f"/v1/datasets/{ds['id']}").status_code == 404
    assert stored_files(settings) == []


def test_same_text_and_label_column(tenant, settings):
    r = upload(
        tenant.client, text_csv(small_text_rows()), text_column="label", label_column="label"
    )
    assert_problem(r, 400, "must differ")
    assert_nothing_created(tenant, settings)


def test_non_utf8_line_is_right_after_a_bom(tenant):
    data = b"\xef\xbb\xbf" + text_csv(small_text_rows()) + b"bad \xff here,positive\n"
    body = assert_problem(upload(tenant.client, data), 400, "byte 0xff", "line 26")
    assert body["errors"][0]["line"] == 26


def test_crafted_cursor_and_bad_limits_are_400(tenant):
    import base64

    for q in (
        "cursor=bad",
        "cursor=" + base64.b64encode(b"p=garbage").decode(),
        "cursor=" + base64.b64encode(b"p=9999999999999999999999").decode(),
        "limit=0",
        "limit=-1",
        "limit=abc",
    ):
        r = tenant.client.get(f"/v1/datasets?{q}")
        assert r.status_code == 400, (q, r.content)
        assert r["Content-Type"].startswith("application/problem+json")


def test_huge_json_body_is_413_and_deep_nesting_is_400(tenant, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    r = tenant.client.post("/v1/training-jobs", {"dataset": "x" * 2000}, format="json")
    assert r.status_code == 413 and r["Content-Type"].startswith("application/problem+json")
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10**8
    deep = "[" * 100000 + "]" * 100000
    r = tenant.client.post(
        "/v1/training-jobs", data='{"dataset": ' + deep + "}", content_type="application/json"
    )
    assert r.status_code == 400


def test_disallowed_host_is_a_problem(tenant):
    r = tenant.client.get("/v1/datasets", HTTP_HOST="evil.example")
    assert r.status_code == 400 and r["Content-Type"].startswith("application/problem+json")


# The four cases where upload validation and training used to disagree (issue 9, item 4);
# the training side is tests/workers/ml/test_dataset_agreement.py.


def test_header_with_a_space_after_the_comma_is_accepted(tenant):
    r = upload(tenant.client, text_csv(small_text_rows(), header="text, label"))
    assert r.status_code == 201, r.content
    assert r.json()["classes"] == {"negative": 12, "positive": 12}
    assert r.json()["report"]["columns"] == ["text", "label"]


def test_a_row_that_is_only_a_comma_is_skipped_like_a_blank_line(tenant):
    data = text_csv(small_text_rows()) + b",\n , \n"
    r = upload(tenant.client, data)
    assert r.status_code == 201, r.content
    assert r.json()["num_examples"] == 24 and r.json()["report"]["rows"] == 24


def test_a_quoted_label_holding_a_newline_is_refused(tenant, settings):
    data = text_csv(small_text_rows()) + b'"one more","posi\ntive"\n'
    r = upload(tenant.client, data)
    body = assert_problem(r, 400, "line 27", "line break")
    assert [e.get("line") for e in body["errors"]] == [27]
    assert_nothing_created(tenant, settings)


def test_a_doubled_slash_in_a_zip_path_keeps_the_class_folder(tenant):
    files = {
        f"{c}//{i}.png": png_bytes(10 * k + i)
        for k, c in enumerate(("cat", "dog"))
        for i in range(2)
    }
    r = upload(tenant.client, image_zip(files), task="image-classification", name="d.zip")
    assert r.status_code == 201, r.content
    assert r.json()["classes"] == {"cat": 2, "dog": 2}
