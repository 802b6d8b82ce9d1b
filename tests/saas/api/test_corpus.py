"""The kept corpus (``corpus.py``) replayed against every /v1 route: each nasty string and
byte sequence as every path parameter, as every query parameter the API reads, as every
field of a valid body (one field at a time, the others valid, so the value reaches the
service and the database), and the nasty headers. Each answer is a success or a 4xx
problem, never a 5xx; a refused upload leaves no row behind.

The fuzz runs that built the corpus found, and these replays keep fixed: a lone surrogate in a
JSON field echoed in a 400 (an encoding error, 500); a file name over 200 characters as the
dataset's default name (a varchar overflow, 500); a NUL in a dashboard form's plan code (a
DataError, 500).
"""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import pytest

from saas.datasets.models import Dataset
from tests.conftest import image_zip, png_bytes, small_text_rows, text_csv
from tests.saas.api.corpus import HEADERS, NUMBERS, RAW_SEGMENTS, STRINGS, WRONG_TYPES
from tests.saas.api.fuzz_world import World, build_world, v1_routes

pytestmark = pytest.mark.django_db
#: Answered by the data plane, which no test process runs: the web tier's 503 is right there.
DATA_PLANE = "/v1/models/{model_id}/predict"
ROUTES = v1_routes()
QUERY_PARAMS = ["limit", "cursor", "status", "action", "group_by"]
VALUES: list[object] = [*STRINGS, *NUMBERS, *WRONG_TYPES]


def _encodable(s: str) -> bool:
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


#: What can go in a URL: the strings percent-encoded (lone surrogates cannot be), and raw bytes.
SEGMENTS = [quote(s, safe="") for s in STRINGS if _encodable(s)] + RAW_SEGMENTS


def _check(r, method: str, url: str, what: object = "") -> None:
    if url.split("?")[0].endswith("/predict") and r.status_code == 503:
        return
    assert r.status_code < 500, (method, url, what, r.content[:300])
    if r.status_code >= 400:
        assert r["Content-Type"].startswith("application/problem+json"), (method, url, what)


@pytest.fixture
def world(db, settings) -> World:
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.05
    return build_world("corpus")


@pytest.mark.parametrize(
    "template, names, methods", [r for r in ROUTES if r[1]], ids=lambda v: str(v)
)
def test_every_path_parameter(world, template, names, methods):
    c = world.key_client()
    for method in methods:
        for name in names:
            for seg in SEGMENTS:
                url = template.format(**{**world.ids, name: seg})
                _check(c.generic(method.upper(), url), method, url)


@pytest.mark.parametrize(
    "template, names, methods", [r for r in ROUTES if "get" in r[2]], ids=lambda v: str(v)
)
def test_every_query_parameter(world, template, names, methods):
    c = world.key_client()
    base = template.format(**world.ids)
    for q in QUERY_PARAMS:
        for seg in SEGMENTS:
            url = f"{base}?{q}={seg}"
            _check(c.get(url), "get", url)


def _bodies(w: World) -> dict[tuple[str, str], dict]:
    """A valid body for each JSON write route (its fields are what the fuzz varies)."""
    return {
        ("post", "/v1/api-keys"): {"name": "k", "scopes": ["datasets:read"]},
        ("patch", "/v1/api-keys/{key_id}"): {"monthly_spend_cap": "10.00"},
        ("patch", "/v1/billing"): {"monthly_spend_cap": "10.00"},
        ("post", "/v1/billing/checkout"): {"plan": "pro"},
        ("post", "/v1/invitations"): {"email": "x@y.test", "role": "viewer"},
        ("post", "/v1/invitations/accept"): {"token": "abc"},
        ("post", "/v1/invoices/{invoice_id}/send"): {"to": ["owner@corpus.test"]},
        ("patch", "/v1/members/{member_id}"): {"role": "developer"},
        ("post", "/v1/training-jobs"): {
            "dataset": w.ids.get("dataset_id", ""),
            "base_model": "text-embedding-bag",
            "hyperparameters": {"epochs": 1, "batch_size": 8, "validation_split": 0.25},
            "seed": 0,
            "device": "cpu",
            "dry_run": True,
        },
        ("post", DATA_PLANE): {"inputs": ["great film"]},
    }


def _variants(body: dict):
    """``body`` with one field (or one hyperparameter, or one list item) replaced by each
    corpus value, with a field removed, and with a nasty extra field."""
    for key, value in body.items():
        for v in VALUES:
            yield {**body, key: v}
        if isinstance(value, dict):
            for sub in value:
                for v in VALUES:
                    yield {**body, key: {**value, sub: v}}
        if isinstance(value, list):
            for v in VALUES:
                yield {**body, key: [v]}
            yield {**body, key: value * 50}
        yield {k: v for k, v in body.items() if k != key}
    for s in STRINGS:
        yield {**body, s: s}


@pytest.mark.parametrize("route", list(_bodies(World(None, "")).keys()), ids=str)  # type: ignore[arg-type]
def test_every_body_field(world, route):
    method, template = route
    body = _bodies(world)[route]
    url = template.format(**world.ids)
    key, session = world.key_client(), world.session_client()
    for variant in _variants(body):
        data = json.dumps(variant).encode("utf-8", "surrogatepass")
        for c in (key, session):
            _check(c.generic(method.upper(), url, data, "application/json"), method, url, variant)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "\xff"}',
        b"\xff\xfe",
        b'{"name": "\\ud800"}',
        b'{"name": "\\u0000"}',
        b'{"\\u0000": 1}',
        b'{"name": 1e999}',
        b'{"name": NaN}',
        b'{"seed": 1' + b"0" * 5000 + b"}",
        b"[" * 5000,
        b"",
    ],
)
def test_raw_json_bodies(world, raw):
    c = world.key_client()
    for template, _, methods in ROUTES:
        url = template.format(**world.ids)
        for method in set(methods) & {"post", "patch", "put"}:
            _check(c.generic(method.upper(), url, raw, "application/json"), method, url, raw)


def test_nul_and_surrogates_in_json_are_400s_naming_the_field(world):
    r = world.key_client().post(
        "/v1/training-jobs",
        b'{"dataset": "ds\\u0000", "base_model": "\\ud800", "hyperparameters": {"x\\u0000": 1}}',
        content_type="application/json",
    )
    assert r.status_code == 400 and r["Content-Type"] == "application/problem+json"
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors == {
        "dataset": "contains a NUL character",
        "base_model": "contains an unpaired surrogate (not valid Unicode text)",
        "hyperparameters.x\\x00": "field name contains a NUL character",
    }


def test_a_non_ascii_content_type_on_predict_is_a_415(world):
    r = world.key_client().post(
        f"/v1/models/{world.ids['model_id']}/predict", b"{}", content_type="ÿÿ"
    )
    assert r.status_code == 415 and r["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    "header",
    [
        "HTTP_AUTHORIZATION",
        "HTTP_IDEMPOTENCY_KEY",
        "HTTP_ACCEPT",
        "HTTP_X_FORWARDED_FOR",
        "CONTENT_TYPE",
        "HTTP_COOKIE",
    ],
)
def test_odd_header_values(world, header):
    c = world.key_client()
    for template, _, methods in ROUTES:
        url = template.format(**world.ids)
        method = "post" if "post" in methods else methods[0]
        for value in HEADERS:
            _check(
                c.generic(method.upper(), url, b"{}", "application/json", **{header: value}),
                method,
                url,
                value,
            )


def test_uploads_with_nasty_names_cells_headers_and_members(world):
    c = world.key_client()
    rows = small_text_rows()
    for s in filter(_encodable, STRINGS):
        members = {f"a/{i}.png": png_bytes(i) for i in range(6)}
        members |= {f"b/{i}.png": png_bytes(200 + i) for i in range(6)}
        if "\x00" not in s:  # zipfile itself cannot write a NUL into a member name
            members |= {f"{s}/x.png": png_bytes(9), f"a/{s}.png": png_bytes(10)}
        cases = [
            ({"name": s}, text_csv(rows), "d.csv"),
            ({"text_column": s}, text_csv(rows), "d.csv"),
            ({"label_column": s}, text_csv(rows), "d.csv"),
            ({}, text_csv(rows), s or "x"),
            ({}, text_csv([*rows, (s, "positive"), ("ok", s)]), "d.csv"),
            ({}, text_csv(rows, header="text,label," + s.replace("\n", " ")), "d.csv"),
            ({"task": "image-classification"}, image_zip(members), "i.zip"),
        ]
        for extra, blob, filename in cases:
            before = Dataset.objects.for_tenant(world.org.org).count()
            f = io.BytesIO(blob)
            f.name = filename
            r = c.post("/v1/datasets", {"file": f, "task": "text-classification", **extra})
            _check(r, "post", "/v1/datasets", (extra, filename, s))
            after = Dataset.objects.for_tenant(world.org.org).count()
            assert after == before + (r.status_code == 201), (extra, filename, s)


def test_a_file_name_over_the_column_is_cut_to_fit(world):
    f = io.BytesIO(text_csv(small_text_rows()))
    f.name = "Ω" * 300 + ".csv"
    r = world.key_client().post("/v1/datasets", {"file": f, "task": "text-classification"})
    assert r.status_code == 201, r.content
    assert r.json()["name"] == "Ω" * 200


@pytest.mark.parametrize(
    "raw",
    [
        b"text,label\n\x00,a\nb,c\n",
        b"text,label\n\xff\xfe,a\nb,c\n",
        b"\xef\xbb\xbftext,label\nx,\x00\n",
        b"text,label\n" + b"a,b\n" * 3 + b'"unterminated,a\n',
        b"text\x00,label\nx,y\n",
        b"text,label\n\x1b[31m,\x7f\n" * 20,
        b"\xff\xfetext,label\n",
    ],
)
def test_raw_csv_bytes(world, raw):
    before = Dataset.objects.for_tenant(world.org.org).count()
    f = io.BytesIO(raw)
    f.name = "d.csv"
    r = world.key_client().post("/v1/datasets", {"file": f, "task": "text-classification"})
    _check(r, "post", "/v1/datasets", raw)
    assert Dataset.objects.for_tenant(world.org.org).count() == before + (r.status_code == 201)
