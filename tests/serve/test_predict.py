"""POST /v1/models/{id}/predict on the data plane: the contract, and every bad input refused
with a 400/413/415 problem naming the field (ported from the web view's tests, which checked
the same contract before predictions moved to ``serve``)."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import pytest
from PIL import Image

from saas.metering.models import UsageEvent
from tests.conftest import png_bytes
from tests.serve.conftest import serve_app

pytestmark = pytest.mark.tf

PROBLEM = "application/problem+json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ledger(org) -> int:
    """Predictions in ``org``'s ledger now."""
    return sum(
        int(e.quantity) for e in UsageEvent.objects.for_tenant(org).filter(meter="predictions")
    )


def wait_ledger(org, expected: int, timeout: float = 10.0) -> int:
    """Poll the ledger until it holds ``expected`` predictions (windows close ~2 s after
    their second and the app flushes every 0.5 s here), or ``timeout`` passes; returns it."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        total = ledger(org)
        if total >= expected:
            return total
        time.sleep(0.2)
    return total


def b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with no real pixel data: costs
    nothing to build, and a data plane that decoded before checking would allocate it all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def gif_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="GIF")
    return buf.getvalue()


def assert_problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://trainyard.dev/problems/")
    assert body["title"] and body["detail"]
    return body


def test_text_prediction_contract(transactional_db, clean_redis, tenant, text_model):
    # An app started after the model was registered: nothing pre-warmed it, the first
    # request loads it (cold_start).
    with serve_app() as c:
        _contract(c, tenant, text_model)


def _contract(serve_client, tenant, text_model) -> None:
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        json={"inputs": ["great film, loved it", "awful, boring"]},
        headers=bearer(tenant.key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "prediction" and body["model"] == text_model
    assert body["id"].startswith("pred_")
    assert len(body["predictions"]) == 2
    for p in body["predictions"]:
        assert p["label"] in {"negative", "positive"}
        assert set(p["scores"]) == {"negative", "positive"}
        assert abs(sum(p["scores"].values()) - 1) < 1e-4
        assert p["score"] == max(p["scores"].values())
    assert body["usage"]["predictions"] == 2
    assert body["usage"]["cold_start"] is True
    assert body["usage"]["inference_ms"] >= 0
    assert int(r.headers["RateLimit-Limit"]) > 0
    assert int(r.headers["RateLimit-Remaining"]) >= 0 and "RateLimit-Reset" in r.headers
    r2 = serve_client.post(
        f"/v1/models/{text_model}/predict", json={"inputs": ["ok"]}, headers=bearer(tenant.key)
    )
    assert r2.json()["usage"]["cold_start"] is False
    assert wait_ledger(tenant.org, 3) == 3


def test_the_input_limit_is_inclusive(serve_client, tenant, text_model):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        json={"inputs": ["x"] * 256},
        headers=bearer(tenant.key),
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 256


TEXT_REFUSALS = [
    ({"inputs": []}, [{"field": "inputs", "message": "send at least one input"}]),
    ({"inputs": "just a string"}, [{"field": "inputs", "message": "must be a JSON array"}]),
    ({"inputs": {"a": 1}}, [{"field": "inputs", "message": "must be a JSON array"}]),
    ({"inputs": None}, [{"field": "inputs", "message": "must be a JSON array"}]),
    ({}, [{"field": "inputs", "message": "this field is required"}]),
    (["great film"], [{"field": "inputs", "message": "this field is required"}]),
    ({"inputs": ["x"] * 257}, [{"field": "inputs", "message": "257 inputs > limit 256"}]),
    (
        {"inputs": ["ok", 3, None, {"image_base64": "AAAA"}]},
        [
            {"field": "inputs[1]", "message": "this text model takes strings"},
            {"field": "inputs[2]", "message": "this text model takes strings"},
            {"field": "inputs[3]", "message": "this text model takes strings"},
        ],
    ),
    (
        {"inputs": ["fine", "x" * 100_001]},
        [{"field": "inputs[1]", "message": "over 100000 characters"}],
    ),
]


@pytest.mark.parametrize("body, errors", TEXT_REFUSALS)
def test_bad_text_inputs_name_the_field(serve_client, tenant, text_model, body, errors):
    r = serve_client.post(f"/v1/models/{text_model}/predict", json=body, headers=bearer(tenant.key))
    problem = assert_problem(r, 400)
    assert problem["type"].endswith("/validation-failed")
    assert problem["errors"] == errors


def test_refused_requests_bill_nothing(serve_client, tenant, text_model):
    for body, _errors in TEXT_REFUSALS:
        r = serve_client.post(
            f"/v1/models/{text_model}/predict", json=body, headers=bearer(tenant.key)
        )
        assert r.status_code == 400
    ok = serve_client.post(
        f"/v1/models/{text_model}/predict", json={"inputs": ["ok"]}, headers=bearer(tenant.key)
    )
    assert ok.status_code == 200
    assert wait_ledger(tenant.org, 1) == 1
    time.sleep(2.5)  # a window later: still only the one
    assert ledger(tenant.org) == 1


@pytest.mark.parametrize(
    "raw",
    [
        b'{"inputs": ["fine", "bad \\ud800"]}',  # a lone surrogate, escaped
        b'{"inputs": ["\xff\xfe not UTF-8"]}',
        b'{"inputs": ["unterminated',
        b"",
        b"\x00",
        b"NaN",
    ],
)
def test_unparseable_bodies_are_400_problems(serve_client, tenant, text_model, raw):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        content=raw,
        headers={**bearer(tenant.key), "Content-Type": "application/json"},
    )
    problem = assert_problem(r, 400)
    assert problem["type"].endswith(("/malformed-request", "/validation-failed"))
    if "errors" in problem:
        assert all(e["field"].startswith("inputs") for e in problem["errors"])


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "x"])
def test_wrong_content_type_is_415(serve_client, tenant, text_model, content_type):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        content=b'{"inputs": ["ok"]}',
        headers={**bearer(tenant.key), "Content-Type": content_type},
    )
    problem = assert_problem(r, 415)
    assert problem["type"].endswith("/unsupported-media-type")


def test_body_over_the_limit_is_413_declared_or_streamed(
    transactional_db, clean_redis, tenant, text_model
):
    body = b'{"inputs": ["' + b"x" * 2000 + b'"]}'
    with serve_app(max_body_bytes=1000) as c:
        url = f"/v1/models/{text_model}/predict"
        headers = {**bearer(tenant.key), "Content-Type": "application/json"}
        declared = c.post(url, content=body, headers=headers)
        assert assert_problem(declared, 413)["type"].endswith("/payload-too-large")

        def chunks():  # no Content-Length: refused while reading
            for i in range(0, len(body), 256):
                yield body[i : i + 256]

        streamed = c.post(url, content=chunks(), headers=headers)
        assert_problem(streamed, 413)
        multipart = c.post(
            url, files={"files": ("a.png", b"x" * 2000, "image/png")}, headers=bearer(tenant.key)
        )
        assert_problem(multipart, 413)
        ok = c.post(url, json={"inputs": ["fits"]}, headers=bearer(tenant.key))
        assert ok.status_code == 200, ok.text


def test_text_model_sent_files(serve_client, tenant, text_model):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        files={"files": ("a.png", png_bytes(), "image/png")},
        headers=bearer(tenant.key),
    )
    assert assert_problem(r, 400)["errors"] == [
        {"field": "files", "message": "files are only accepted by image models"}
    ]


# --- image models ------------------------------------------------------------------------


def test_image_prediction_as_base64_and_multipart(
    transactional_db, clean_redis, tenant, image_model
):
    with serve_app() as c:  # started after the model was registered: the first load is cold
        _image_contract(c, tenant, image_model)


def _image_contract(serve_client, tenant, image_model) -> None:
    url = f"/v1/models/{image_model}/predict"
    dark, light = png_bytes(10), png_bytes(245)
    r = serve_client.post(
        url,
        json={"inputs": [{"image_base64": b64(dark)}, {"image_base64": b64(light)}]},
        headers=bearer(tenant.key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"] == {**body["usage"], "predictions": 2, "cold_start": True}
    for p in body["predictions"]:
        assert set(p["scores"]) == {"dark", "light"} and p["label"] in {"dark", "light"}
    m = serve_client.post(
        url,
        files=[("files", ("a.png", dark, "image/png")), ("files", ("b.png", light, "image/png"))],
        headers=bearer(tenant.key),
    )
    assert m.status_code == 200, m.text
    assert m.json()["usage"]["cold_start"] is False
    # The same images give the same scores whichever way they were sent.
    for a, b in zip(body["predictions"], m.json()["predictions"], strict=True):
        assert a["label"] == b["label"]
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)
    assert wait_ledger(tenant.org, 4) == 4


def test_bad_images_are_each_named(serve_client, tenant, image_model):
    r = serve_client.post(
        f"/v1/models/{image_model}/predict",
        json={
            "inputs": [
                {"image_base64": b64(png_bytes())},  # fine
                "not an object",
                {"image_base64": "%%% not base64"},
                {"image_base64": b64(b"these bytes are no image")},
                {"image_base64": b64(gif_bytes())},
                {"image_base64": b64(png_header(7000, 7000))},  # 49 Mpx > 40 Mpx
                {"image_base64": 42},
                {"image_base64": b64(png_header(100_000, 100_000))},  # a decompression bomb
            ]
        },
        headers=bearer(tenant.key),
    )
    problem = assert_problem(r, 400)
    assert problem["errors"] == [
        {"field": "inputs[1]", "message": 'this image model takes {"image_base64": "…"} objects'},
        {"field": "inputs[2]", "message": "image_base64 is not valid base64"},
        {"field": "inputs[3]", "message": "not a decodable JPEG or PNG image"},
        {"field": "inputs[4]", "message": "GIF is not supported (JPEG or PNG)"},
        {"field": "inputs[5]", "message": "7000x7000 pixels is over the limit"},
        {"field": "inputs[6]", "message": 'this image model takes {"image_base64": "…"} objects'},
        {"field": "inputs[7]", "message": "image has more pixels than the limit"},
    ]
    assert "7 input(s)" in problem["detail"]


def test_pixels_per_request_are_bounded_from_the_headers(serve_client, tenant, image_model):
    # 6000x6000 = 36 Mpx is under the per-image limit; two are over the request's 64 Mpx.
    big = b64(png_header(6000, 6000))
    started = time.monotonic()
    r = serve_client.post(
        f"/v1/models/{image_model}/predict",
        json={"inputs": [{"image_base64": big}, {"image_base64": big}]},
        headers=bearer(tenant.key),
    )
    problem = assert_problem(r, 400)
    assert problem["errors"] == [
        {
            "field": "inputs[1]",
            "message": "the request's images add up to more pixels than one request may decode",
        }
    ]
    assert time.monotonic() - started < 5  # decided from headers, not by decoding 72 Mpx


def test_an_image_model_sent_text(serve_client, tenant, image_model):
    r = serve_client.post(
        f"/v1/models/{image_model}/predict",
        json={"inputs": ["a sentence"]},
        headers=bearer(tenant.key),
    )
    assert assert_problem(r, 400)["errors"] == [
        {"field": "inputs[0]", "message": 'this image model takes {"image_base64": "…"} objects'}
    ]


def test_bad_multipart_files_name_the_files_field(serve_client, tenant, image_model):
    url = f"/v1/models/{image_model}/predict"
    r = serve_client.post(
        url,
        files=[
            ("files", ("a.png", png_bytes(), "image/png")),
            ("files", ("b.gif", gif_bytes(), "image/gif")),
            ("files", ("c.png", b"\x89PNG truncated", "image/png")),
        ],
        headers=bearer(tenant.key),
    )
    assert assert_problem(r, 400)["errors"] == [
        {"field": "files[1]", "message": "GIF is not supported (JPEG or PNG)"},
        {"field": "files[2]", "message": "not a decodable JPEG or PNG image"},
    ]
    none = serve_client.post(
        url, files={"other": ("x.txt", b"x", "text/plain")}, headers=bearer(tenant.key)
    )
    assert assert_problem(none, 400)["errors"] == [
        {"field": "files", "message": "no files were sent"}
    ]
    too_many = serve_client.post(
        url,
        files=[("files", (f"{i}.png", png_bytes(), "image/png")) for i in range(257)],
        headers=bearer(tenant.key),
    )
    assert assert_problem(too_many, 400)["status"] == 400  # python-multipart's max_files


def test_an_image_that_passes_its_header_but_does_not_decode(
    serve_client, clean_redis, tenant, image_model
):
    """The header check passes, TensorFlow's decoder fails: a 400 on the input, nothing billed,
    and the reservation is given back (the org's month counter is back to what it was)."""
    url = f"/v1/models/{image_model}/predict"
    ok = serve_client.post(
        url, json={"inputs": [{"image_base64": b64(png_bytes())}]}, headers=bearer(tenant.key)
    )
    assert ok.status_code == 200, ok.text
    counter = list(clean_redis.scan_iter("dp:q:o:*"))
    assert len(counter) == 1
    r = serve_client.post(
        url,
        json={"inputs": [{"image_base64": b64(corrupt_png())}] * 3},
        headers=bearer(tenant.key),
    )
    problem = assert_problem(r, 400)
    assert problem["errors"][0]["field"] == "inputs"
    assert int(clean_redis.get(counter[0])) == 1
    assert wait_ledger(tenant.org, 1) == 1
    time.sleep(2.5)
    assert ledger(tenant.org) == 1


def corrupt_png() -> bytes:
    """A PNG with a valid header and garbage pixel data (Pillow's lazy open accepts it)."""
    good = png_bytes(size=(8, 8))
    idat = good.index(b"IDAT")
    length = struct.unpack(">I", good[idat - 4 : idat])[0]
    garbage = b"\x00garbage!" * (length // 9 + 1)
    garbage = garbage[:length]
    crc = struct.pack(">I", zlib.crc32(b"IDAT" + garbage) & 0xFFFFFFFF)
    return good[: idat + 4] + garbage + crc + good[idat + 8 + length :]


def test_a_streamed_multipart_body_over_the_limit_is_413(
    transactional_db, clean_redis, tenant, image_model
):
    """Without Content-Length the multipart body is bounded while it is read, like JSON."""
    import httpx

    png = png_bytes()
    request = httpx.Request(
        "POST",
        "http://testserver/",
        files=[("files", (f"{i}.png", png, "image/png")) for i in range(40)],
    )
    body = request.read()
    assert len(body) > 1000
    with serve_app(max_body_bytes=1000) as c:

        def chunks():
            for i in range(0, len(body), 256):
                yield body[i : i + 256]

        r = c.post(
            f"/v1/models/{image_model}/predict",
            content=chunks(),
            headers={**bearer(tenant.key), "Content-Type": request.headers["content-type"]},
        )
        assert_problem(r, 413)


def test_media_types_are_case_insensitive(serve_client, tenant, text_model):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        content=b'{"inputs": ["fine"]}',
        headers={**bearer(tenant.key), "Content-Type": "Application/JSON; charset=UTF-8"},
    )
    assert r.status_code == 200, r.text


def test_unauthenticated_requests_are_counted_as_refusals(serve_client, text_model):
    def refused() -> float:
        for line in serve_client.get("/metrics").text.splitlines():
            if line.startswith('trainyard_serve_refusals_total{reason="unauthenticated"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = refused()
    r = serve_client.post(f"/v1/models/{text_model}/predict", json={"inputs": ["x"]})
    assert_problem(r, 401)
    assert refused() == before + 1
