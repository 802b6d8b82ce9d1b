"""The Open Inference Protocol v2 routes of the data plane (KServe / Triton / MLServer REST):
server and model metadata, health, infer with BYTES tensors, and errors carrying both the
problem+json members and the protocol's ``error``."""

from __future__ import annotations

import time

import pytest

from tests.conftest import png_bytes
from tests.serve.conftest import serve_app
from tests.serve.test_predict import assert_problem, b64, bearer, wait_ledger

pytestmark = pytest.mark.tf

TEXTS = ["great film, loved it", "awful, boring"]


def tensor(data, shape=None, datatype="BYTES", name="inputs") -> dict:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape if shape is not None else [len(data)],
        "data": data,
    }


def infer(client, model_id: str, key: str, body: dict, path: str = ""):
    return client.post(f"/v2/models/{model_id}{path}/infer", json=body, headers=bearer(key))


def assert_oip_problem(r, status: int) -> dict:
    problem = assert_problem(r, status)
    assert problem["error"] == problem["detail"]
    return problem


def test_server_metadata_and_liveness_need_no_key(serve_client):
    r = serve_client.get("/v2")
    assert r.status_code == 200
    assert r.json()["name"] == "trainyard-serve" and "version" in r.json()
    assert serve_client.get("/v2/health/live").json() == {"live": True}
    assert serve_client.get("/healthz/serve").json() == {"live": True}


def test_readiness(serve_client):
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # ready once the key cache has refreshed once
        r = serve_client.get("/v2/health/ready")
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.status_code == 200 and r.json()["ready"] is True, r.text
    assert r.json()["checks"] == {"redis": "ok", "database": "ok", "storage": "ok"}


def test_not_ready_naming_redis_when_redis_is_unreachable(
    transactional_db, tenant, text_model, settings
):
    from saas.inference import services

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        _not_ready(tenant, text_model)
    finally:
        services._client.cache_clear()  # in case the flusher cached a client for that URL


def _not_ready(tenant, text_model) -> None:
    with serve_app() as c:
        time.sleep(0.5)  # the key cache refreshed: only Redis fails
        r = c.get("/v2/health/ready")
        problem = assert_problem(r, 503)
        assert problem["checks"]["redis"].startswith("unreachable (") and problem["ready"] is False
        assert {k: v for k, v in problem["checks"].items() if k != "redis"} == {
            "database": "ok",
            "storage": "ok",
        }
        assert problem["detail"] == "Failing checks: redis."
        assert c.get("/v2/health/live").status_code == 200  # liveness does not depend on it
        # A prediction that cannot be admitted or metered is not served.
        p = c.post(
            f"/v1/models/{text_model}/predict", json={"inputs": ["x"]}, headers=bearer(tenant.key)
        )
        assert "nothing was billed" in assert_problem(p, 503)["detail"]


def test_model_metadata_and_ready(transactional_db, clean_redis, tenant, text_model):
    with serve_app() as c:  # started after the model was registered: not pre-warmed
        _metadata_and_ready(c, tenant, text_model)


def _metadata_and_ready(serve_client, tenant, text_model) -> None:
    r = serve_client.get(f"/v2/models/{text_model}", headers=bearer(tenant.key))
    assert r.status_code == 200, r.text
    meta = r.json()
    assert meta["name"] == text_model and meta["versions"] == ["1"]
    assert meta["platform"] == "tensorflow_savedmodel"
    assert meta["inputs"] == [{"name": "inputs", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [
        {"name": "scores", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
    ]
    assert sorted(meta["parameters"]["classes"]) == ["negative", "positive"]
    assert meta["parameters"]["content_type"] == "str"
    versioned = serve_client.get(f"/v2/models/{text_model}/versions/1", headers=bearer(tenant.key))
    assert versioned.json() == meta
    no_such = serve_client.get(f"/v2/models/{text_model}/versions/2", headers=bearer(tenant.key))
    assert_oip_problem(no_such, 404)
    ready = serve_client.get(f"/v2/models/{text_model}/ready", headers=bearer(tenant.key))
    assert ready.json() == {"name": text_model, "ready": True, "loaded": False}
    assert infer(serve_client, text_model, tenant.key, {"inputs": [tensor(["x"])]}).is_success
    ready = serve_client.get(f"/v2/models/{text_model}/ready", headers=bearer(tenant.key))
    assert ready.json()["loaded"] is True


@pytest.mark.parametrize("shape", [[2], [2, 1]])
def test_infer_bytes_tensors(serve_client, tenant, text_model, shape):
    data = TEXTS if shape == [2] else [[t] for t in TEXTS]
    r = infer(
        serve_client, text_model, tenant.key, {"id": "req-1", "inputs": [tensor(data, shape)]}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == text_model and body["model_version"] == "1"
    assert body["id"] == "req-1"
    assert body["parameters"]["usage"]["predictions"] == 2
    scores, label = body["outputs"]
    assert scores["name"] == "scores" and scores["datatype"] == "FP32"
    assert scores["shape"] == [2, 2] and len(scores["data"]) == 4
    assert label == {**label, "name": "label", "datatype": "BYTES", "shape": [2]}
    assert int(r.headers["RateLimit-Limit"]) > 0
    # The same numbers as the v1 route, in the order of the model's classes.
    v1 = serve_client.post(
        f"/v1/models/{text_model}/predict", json={"inputs": TEXTS}, headers=bearer(tenant.key)
    ).json()
    classes = serve_client.get(f"/v2/models/{text_model}", headers=bearer(tenant.key)).json()[
        "parameters"
    ]["classes"]
    flat = [p["scores"][c] for p in v1["predictions"] for c in classes]
    assert scores["data"] == pytest.approx(flat, abs=1e-6)
    assert label["data"] == [p["label"] for p in v1["predictions"]]
    assert wait_ledger(tenant.org, 4) == 4


def test_outputs_selection(serve_client, tenant, text_model):
    r = infer(
        serve_client,
        text_model,
        tenant.key,
        {"inputs": [tensor(TEXTS)], "outputs": [{"name": "label"}]},
    )
    assert [o["name"] for o in r.json()["outputs"]] == ["label"]
    r = infer(
        serve_client,
        text_model,
        tenant.key,
        {"inputs": [tensor(TEXTS)], "outputs": [{"name": "scores"}, {"name": "nope"}]},
    )
    assert [o["name"] for o in r.json()["outputs"]] == ["scores"]
    r = infer(
        serve_client,
        text_model,
        tenant.key,
        {"inputs": [tensor(TEXTS)], "outputs": [{"name": "nope"}]},
    )
    assert assert_oip_problem(r, 400)["errors"][0]["field"] == "outputs"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"inputs": [tensor(TEXTS, datatype="FP32")]}, "inputs[0].datatype"),
        ({"inputs": [tensor(TEXTS, datatype="INT64")]}, "inputs[0].datatype"),
        ({"inputs": [tensor(TEXTS, shape=[3])]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape=[1, 2])]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape=[2, 1, 1])]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape=[-2])]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape=[])]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape="2")]}, "inputs[0].shape"),
        ({"inputs": [tensor(TEXTS, shape=[True, True])]}, "inputs[0].shape"),
        ({"inputs": [{**tensor(TEXTS), "data": "x"}]}, "inputs[0].data"),
        ({"inputs": [tensor(TEXTS), tensor(TEXTS, name="more")]}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": "x"}, "inputs"),
        ({"inputs": ["x"]}, "inputs"),
        ({}, "inputs"),
        ([1, 2], ""),
        ({"inputs": [tensor([1, 2])]}, "inputs[0].data[0]"),
        ({"inputs": [tensor([])]}, "inputs[0].data"),
        ({"inputs": [tensor(["x"] * 257)]}, "inputs[0].data"),
    ],
)
def test_bad_tensors_are_400_with_an_error_member(serve_client, tenant, text_model, body, field):
    r = serve_client.post(f"/v2/models/{text_model}/infer", json=body, headers=bearer(tenant.key))
    problem = assert_oip_problem(r, 400)
    assert field in [e["field"] for e in problem["errors"]], problem


def test_malformed_json_is_a_400_with_an_error_member(serve_client, tenant, text_model):
    r = serve_client.post(
        f"/v2/models/{text_model}/infer",
        content=b'{"inputs": [',
        headers={**bearer(tenant.key), "Content-Type": "application/json"},
    )
    assert_oip_problem(r, 400)


def test_another_tenants_model_is_404_on_every_v2_route(
    serve_client, tenant, other_tenant, text_model
):
    for method, path in (
        ("get", f"/v2/models/{text_model}"),
        ("get", f"/v2/models/{text_model}/ready"),
        ("post", f"/v2/models/{text_model}/infer"),
        ("post", f"/v2/models/{text_model}/versions/1/infer"),
    ):
        kwargs = {"json": {"inputs": [tensor(["x"])]}} if method == "post" else {}
        theirs = getattr(serve_client, method)(path, headers=bearer(other_tenant.key), **kwargs)
        missing = getattr(serve_client, method)(
            path.replace(text_model, "mdl_doesnotexist"), headers=bearer(other_tenant.key), **kwargs
        )
        assert_oip_problem(theirs, 404)
        assert theirs.content == missing.content, path


def test_v2_needs_a_key(serve_client, text_model):
    r = serve_client.post(f"/v2/models/{text_model}/infer", json={"inputs": [tensor(["x"])]})
    assert_oip_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert_oip_problem(serve_client.get(f"/v2/models/{text_model}"), 401)


def test_infer_on_an_image_model(serve_client, tenant, image_model):
    meta = serve_client.get(f"/v2/models/{image_model}", headers=bearer(tenant.key)).json()
    assert meta["parameters"]["content_type"] == "base64"
    r = infer(
        serve_client,
        image_model,
        tenant.key,
        {"inputs": [tensor([b64(png_bytes(5)), b64(png_bytes(250))])]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [2, 2]
    bad = infer(serve_client, image_model, tenant.key, {"inputs": [tensor(["%%%"])]})
    assert assert_oip_problem(bad, 400)["errors"] == [
        {"field": "inputs[0].data[0]", "message": "image_base64 is not valid base64"}
    ]
