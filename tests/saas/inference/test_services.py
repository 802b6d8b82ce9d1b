"""Online prediction inputs checked in the web process, without any worker: each refusal is a
ValidationFailed naming the field and the problem; and an unanswered request bills nothing."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from saas.common.actor import Actor
from saas.common.errors import ServiceUnavailable, ValidationFailed
from saas.inference.services import MAX_TEXT_CHARS, prediction_create, prediction_inputs_validate
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from tests.conftest import png_bytes

TEXT = TrainedModel(task="text-classification")
IMAGE = TrainedModel(task="image-classification")


def _b64(blob: bytes) -> str:
    return base64.b64encode(blob).decode()


def _refused(model, **kwargs) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as err:
        prediction_inputs_validate(model=model, **kwargs)
    return err.value


def test_text_inputs_pass_through():
    assert prediction_inputs_validate(model=TEXT, inputs=["great film", "é"]) == ["great film", "é"]


def test_too_many_inputs(settings):
    limit = settings.TRAINYARD_PREDICT_MAX_INPUTS
    err = _refused(TEXT, inputs=["x"] * (limit + 1))
    assert err.errors == [{"field": "inputs", "message": f"{limit + 1} inputs > limit {limit}"}]
    assert prediction_inputs_validate(model=TEXT, inputs=["x"] * limit) == ["x"] * limit


@pytest.mark.parametrize(
    "inputs, errors",
    [
        ([], [{"field": "inputs", "message": "send at least one input"}]),
        ("great film", [{"field": "inputs", "message": "must be a JSON array"}]),
        (
            ["ok", 3, None],
            [
                {"field": "inputs[1]", "message": "this text model takes strings"},
                {"field": "inputs[2]", "message": "this text model takes strings"},
            ],
        ),
        (
            ["x" * (MAX_TEXT_CHARS + 1)],
            [{"field": "inputs[0]", "message": f"over {MAX_TEXT_CHARS} characters"}],
        ),
        (
            ["fine", "bad \ud800"],
            [{"field": "inputs[1]", "message": "contains a lone surrogate; send valid Unicode"}],
        ),
    ],
)
def test_bad_text_inputs_name_the_field(inputs, errors):
    assert _refused(TEXT, inputs=inputs).errors == errors


def test_files_are_for_image_models_only():
    err = _refused(TEXT, inputs=None, files=[png_bytes()])
    assert err.errors == [{"field": "files", "message": "files are only accepted by image models"}]


def test_image_inputs_as_base64_or_files():
    png = png_bytes(value=200)
    assert prediction_inputs_validate(model=IMAGE, inputs=[{"image_base64": _b64(png)}]) == [
        _b64(png)
    ]
    assert prediction_inputs_validate(model=IMAGE, inputs=None, files=[png, png]) == [_b64(png)] * 2


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (4, 4)).save(buf, format="GIF")
    return buf.getvalue()


def test_bad_images_are_each_named(settings):
    settings.TRAINYARD_MAX_IMAGE_PIXELS = 100
    err = _refused(
        IMAGE,
        inputs=[
            {"image_base64": _b64(png_bytes())},  # fine: 8x8
            "not an object",
            {"image_base64": "%%% not base64"},
            {"image_base64": _b64(b"these bytes are no image")},
            {"image_base64": _b64(_gif())},
            {"image_base64": _b64(png_bytes(size=(20, 20)))},
        ],
    )
    assert err.errors == [
        {"field": "inputs[1]", "message": 'this image model takes {"image_base64": "…"} objects'},
        {"field": "inputs[2]", "message": "image_base64 is not valid base64"},
        {"field": "inputs[3]", "message": "not a decodable JPEG or PNG image"},
        {"field": "inputs[4]", "message": "GIF is not supported (JPEG or PNG)"},
        {"field": "inputs[5]", "message": "20x20 pixels is over the limit"},
    ]
    assert "5 input(s)" in err.detail


def test_an_undecodable_file_names_the_files_field():
    err = _refused(IMAGE, inputs=None, files=[png_bytes(), b"\x89PNG truncated"])
    assert [e["field"] for e in err.errors] == ["files[1]"]


@pytest.mark.django_db
def test_no_inference_worker_is_a_503_and_bills_nothing(acme, settings):
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.3
    model = TrainedModel(id="mdl_nowhere", organization=acme.org, task="text-classification")
    with pytest.raises(ServiceUnavailable):
        prediction_create(model=model, inputs=["great film"], actor=Actor.system())
    assert not UsageEvent.objects.for_tenant(acme.org).exists()
