"""Property-based: no generated input makes the API answer 5xx (hypothesis).

Each example sends arbitrary JSON (or form data, or raw bytes) to a /v1 route, with arbitrary
query parameters and headers that the API reads (Idempotency-Key, Content-Type); the only
property is "a 4xx problem or a success, never a server error". Inference itself is not
reached: no data plane listens (tests/conftest.py), and the test keeps the timeout short.
"""

from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_tenant, set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db

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
field_names = st.sampled_from(
    [
        "dataset",
        "base_model",
        "hyperparameters",
        "seed",
        "device",
        "inputs",
        "name",
        "task",
        "file",
        "text_column",
        "label_column",
        "role",
        "email",
        "scopes",
        "token",
    ]
)
bodies = st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=6))
hyper = st.dictionaries(
    st.sampled_from(
        ["epochs", "batch_size", "learning_rate", "validation_split", "fine_tune", "x"]
    ),
    json_values,
    max_size=5,
)
queries = st.dictionaries(
    st.sampled_from(["limit", "cursor", "status", "action"]), st.text(max_size=20), max_size=3
)


@pytest.fixture
def world(db, settings):
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.05
    set_plan_limits(requests_per_key=10**6, requests_per_organization=10**6, max_active_jobs=10**6)
    t = make_tenant("fuzz")
    ds = upload(t.client, text_csv(small_text_rows())).json()
    return t, ds


PATHS = [
    "/v1/datasets",
    "/v1/training-jobs",
    "/v1/models",
    "/v1/usage",
    "/v1/datasets/{ds}",
    "/v1/training-jobs/tj_nope/cancel",
    "/v1/models/mdl_nope/predict",
    "/v1/training-jobs/tj_nope/misclassified",
]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(["get", "post", "patch", "delete", "put"]),
    body=bodies,
    query=queries,
    idem=st.none() | st.text(max_size=300),
)
def test_no_5xx_for_any_json(world, path, method, body, query, idem):
    t, ds = world
    headers = (
        {"HTTP_IDEMPOTENCY_KEY": idem}
        if idem is not None and "\n" not in idem and "\r" not in idem
        else {}
    )
    call = getattr(t.client, method)
    url = path.format(ds=ds["id"])
    if method == "get":
        r = call(url, QUERY_STRING=urlencode(query), **headers)
    else:
        r = call(url, body, format="json", QUERY_STRING=urlencode(query), **headers)
    assert r.status_code < 500, (method, path, body, r.content[:500])
    if r.status_code >= 400:
        assert r["Content-Type"].startswith("application/problem+json")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dataset=st.text(max_size=40) | st.none(),
    hyperparameters=hyper,
    seed=json_values,
    base_model=json_values,
)
def test_no_5xx_creating_training_jobs(world, dataset, hyperparameters, seed, base_model):
    t, ds = world
    body = {
        "dataset": dataset if dataset is not None else ds["id"],
        "hyperparameters": hyperparameters,
        "seed": seed,
        "base_model": base_model,
    }
    r = t.client.post("/v1/training-jobs", body, format="json")
    assert r.status_code in (201, 400), (body, r.content[:500])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=400),
    task=st.sampled_from(["text-classification", "image-classification", "x"]),
)
def test_no_5xx_uploading_arbitrary_bytes(world, data, task):
    t, _ = world
    r = upload(t.client, data, task=task)
    assert r.status_code in (201, 400, 413), r.content[:500]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(st.tuples(st.text(max_size=20), st.text(max_size=8)), max_size=30))
def test_no_5xx_uploading_arbitrary_csv_rows(world, rows):
    t, _ = world
    r = upload(t.client, text_csv(rows))
    assert r.status_code in (201, 400), r.content[:500]
