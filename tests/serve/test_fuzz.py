"""Property-based: no generated body makes the data plane answer 5xx (hypothesis).

Arbitrary JSON (and raw bytes under arbitrary content types) is sent to the v1 predict route
and the OIP v2 infer route of a real text and a real image model; the only property is "a
success, or a 4xx problem", never a server error. Valid bodies run the model."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import set_plan_limits

pytestmark = pytest.mark.tf

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
tensors = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "datatype": st.sampled_from(["BYTES", "FP32", "x"]) | json_values,
        "shape": st.lists(st.integers(-2, 4), max_size=3) | json_values,
        "data": st.lists(st.text(max_size=20) | json_values, max_size=4) | json_values,
    },
)
bodies = st.one_of(
    json_values,
    st.dictionaries(st.sampled_from(["inputs", "outputs", "id", "parameters"]), json_values),
    st.fixed_dictionaries({"inputs": st.lists(st.text(max_size=20) | json_values, max_size=4)}),
    st.fixed_dictionaries(
        {"inputs": st.lists(tensors, max_size=2)},
        optional={"outputs": st.lists(st.fixed_dictionaries({"name": json_values}), max_size=3)},
    ),
)
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def models(serve_client, tenant, text_model, image_model):
    set_plan_limits(predictions_per_key=10**6, predictions_per_organization=10**6)
    return serve_client, tenant, [text_model, image_model]


def _check(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:500])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")


@SETTINGS
@given(
    which=st.integers(0, 1),
    route=st.sampled_from(["/v1/models/{m}/predict", "/v2/models/{m}/infer"]),
    body=bodies,
)
def test_no_5xx_for_any_json(models, which, route, body):
    client, tenant, ids = models
    r = client.post(
        route.format(m=ids[which]), json=body, headers={"Authorization": f"Bearer {tenant.key}"}
    )
    _check(r)


@SETTINGS
@given(
    which=st.integers(0, 1),
    route=st.sampled_from(["/v1/models/{m}/predict", "/v2/models/{m}/infer"]),
    data=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "multipart/form-data", "multipart/form-data; boundary=x", "text/plain"]
    )
    | st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
)
def test_no_5xx_for_any_bytes(models, which, route, data, content_type):
    client, tenant, ids = models
    headers = {"Authorization": f"Bearer {tenant.key}"}
    try:
        headers["Content-Type"] = content_type.encode("latin-1").decode("latin-1")
        content_type.encode("ascii")
    except UnicodeEncodeError:
        headers["Content-Type"] = "application/octet-stream"
    r = client.post(route.format(m=ids[which]), content=data, headers=headers)
    _check(r)
