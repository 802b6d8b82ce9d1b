"""Every hyperparameter the contract names is accepted by POST /v1/training-jobs, and every
value outside its range is a 400 naming the field (property tests, ``dry_run`` requests)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saas.contract import HYPERPARAMETERS, Hyperparameter
from saas.contract.hyperparameters import accepted
from tests.conftest import image_zip, png_bytes, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db

BASE_MODELS = {"text": "text-embedding-bag", "cnn": "cnn-small", "hub": "mobilenet_v2"}
PAIRS = [(fam, name) for fam in BASE_MODELS for name in accepted(fam)]
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def datasets(tenant, settings):
    settings.TRAINYARD_HUB_HANDLES = {"mobilenet_v2": "/nonexistent/handle"}
    # 24 examples, 2 classes: every validation split in 0.05–0.5 leaves both classes each side.
    text = upload(tenant.client, text_csv(small_text_rows(12))).json()
    files = {
        f"{c}/{i}.png": png_bytes(20 * k + i) for k, c in enumerate(("a", "b")) for i in range(12)
    }
    image = upload(
        tenant.client, image_zip(files), task="image-classification", name="d.zip"
    ).json()
    return {"text": text["id"], "cnn": image["id"], "hub": image["id"]}


def in_range(h: Hyperparameter):
    if h.type is bool:
        return st.booleans()
    if h.choices:
        return st.sampled_from(h.choices)
    if h.type is int:
        return st.integers(int(h.minimum), int(h.maximum))
    return st.floats(h.minimum, h.maximum, allow_nan=False)


def out_of_range(h: Hyperparameter):
    if h.type is bool:
        return st.sampled_from([0, 1, "true", None])
    if h.choices:
        return st.text(max_size=8).filter(lambda s: s not in h.choices)
    if h.type is int:
        return st.one_of(
            st.integers(max_value=int(h.minimum) - 1),
            st.integers(min_value=int(h.maximum) + 1),
            st.floats(h.minimum, h.maximum).filter(lambda x: not float(x).is_integer()),
        )
    below = st.floats(max_value=h.minimum, exclude_max=True, allow_nan=False)
    above = st.floats(min_value=h.maximum, exclude_min=True, allow_nan=False)
    return st.one_of(below, above).filter(math.isfinite)


def post(client, dataset: str, base_model: str, hyperparameters: dict):
    return client.post(
        "/v1/training-jobs",
        {
            "dataset": dataset,
            "base_model": base_model,
            "hyperparameters": hyperparameters,
            "dry_run": True,
        },
        format="json",
    )


@SETTINGS
@given(data=st.data())
def test_every_hyperparameter_in_range_is_accepted(tenant, datasets, data):
    fam, name = data.draw(st.sampled_from(PAIRS))
    value = data.draw(in_range(HYPERPARAMETERS[name]))
    r = post(tenant.client, datasets[fam], BASE_MODELS[fam], {name: value})
    assert r.status_code == 200, (fam, name, value, r.content)
    assert r.json()["hyperparameters"][name] == value


@SETTINGS
@given(data=st.data())
def test_every_value_out_of_range_is_a_400_naming_the_field(tenant, datasets, data):
    fam, name = data.draw(st.sampled_from(PAIRS))
    value = data.draw(out_of_range(HYPERPARAMETERS[name]))
    r = post(tenant.client, datasets[fam], BASE_MODELS[fam], {name: value})
    assert r.status_code == 400, (fam, name, value, r.content)
    assert [e["field"] for e in r.json()["errors"]] == [f"hyperparameters.{name}"]


def test_the_schema_documents_every_hyperparameter(tenant):
    schema = tenant.client.get("/v1/openapi.json").json()
    props = schema["components"]["schemas"]["HyperparametersIn"]["properties"]
    assert set(props) == set(HYPERPARAMETERS)
    for name, h in HYPERPARAMETERS.items():
        assert props[name]["description"].startswith(h.help_text())  # + enum list for choices
