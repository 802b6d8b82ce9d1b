"""Online predictions: validate inputs here, run the model on the ``inference`` queue, bill.

The web process never loads TensorFlow: it sends the inputs to an inference worker (which keeps
models warm, ``workers.ml.model_cache``) and waits for the answer up to
``TRAINYARD_PREDICT_TIMEOUT_SECONDS``; no answer is a 503 problem. One usage event (meter
``predictions``, quantity = number of inputs) is written per answered request.
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from saas.billing.services import billing_check
from saas.celery import Queue, TaskName, app
from saas.common.actor import Actor
from saas.common.errors import ServiceUnavailable, ValidationFailed, WorkerError
from saas.common.ids import new_id
from saas.datasets.models import Task
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.registry.models import TrainedModel

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_TEXT_CHARS = 100_000


def _utf8_encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_image(blob: bytes, where: str) -> str | None:
    if len(blob) > MAX_IMAGE_BYTES:
        return f"image is over {MAX_IMAGE_BYTES} bytes"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob)) as img:
                w, h = img.size
                if w * h > settings.TRAINYARD_MAX_IMAGE_PIXELS:
                    return f"{w}x{h} pixels is over the limit"
                if img.format not in ("JPEG", "PNG"):
                    return f"{img.format} is not supported (JPEG or PNG)"
                img.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return "not a decodable JPEG or PNG image"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"the image cannot be decoded ({exc})"
    return None


def prediction_inputs_validate(
    *, model: TrainedModel, inputs: Any, files: list[bytes] | None = None
) -> list[str]:
    """Check a predict request against the model's task; return the wire form of the inputs.

    Text models take ``inputs`` as a list of strings. Image models take ``inputs`` as a list of
    ``{"image_base64": str}`` or multipart ``files``. Returns a list of strings (texts, or
    base64 image bytes). Raises ValidationFailed for an empty list, more than 256 inputs, the
    wrong kind of input for the task, bad base64 or an undecodable image.
    """
    limit = settings.TRAINYARD_PREDICT_MAX_INPUTS
    field = "inputs"
    if files:
        if model.task != Task.IMAGE_CLASSIFICATION:
            raise ValidationFailed(
                'This is a text model; send {"inputs": ["…"]}.',
                errors=[{"field": "files", "message": "files are only accepted by image models"}],
            )
        items: list = [{"image_base64": base64.b64encode(b).decode()} for b in files]
        field = "files"
    else:
        items = inputs
    if not isinstance(items, list):
        raise ValidationFailed(
            "inputs must be a list.", errors=[{"field": field, "message": "must be a JSON array"}]
        )
    if not items:
        raise ValidationFailed(
            "inputs is empty.", errors=[{"field": field, "message": "send at least one input"}]
        )
    if len(items) > limit:
        raise ValidationFailed(
            f"At most {limit} inputs per request.",
            errors=[{"field": field, "message": f"{len(items)} inputs > limit {limit}"}],
        )
    errors: list[dict] = []
    wire: list[str] = []
    if model.task == Task.TEXT_CLASSIFICATION:
        for i, item in enumerate(items):
            if not isinstance(item, str):
                errors.append({"field": f"inputs[{i}]", "message": "this text model takes strings"})
            elif len(item) > MAX_TEXT_CHARS:
                errors.append(
                    {"field": f"inputs[{i}]", "message": f"over {MAX_TEXT_CHARS} characters"}
                )
            elif not _utf8_encodable(item):
                errors.append(
                    {
                        "field": f"inputs[{i}]",
                        "message": "contains a lone surrogate; send valid Unicode",
                    }
                )
            else:
                wire.append(item)
    else:
        for i, item in enumerate(items):
            where = f"{field}[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("image_base64"), str):
                errors.append(
                    {
                        "field": where,
                        "message": 'this image model takes {"image_base64": "…"} objects',
                    }
                )
                continue
            try:
                blob = base64.b64decode(item["image_base64"], validate=True)
            except (binascii.Error, ValueError):
                errors.append({"field": where, "message": "image_base64 is not valid base64"})
                continue
            problem = _check_image(blob, where)
            if problem:
                errors.append({"field": where, "message": problem})
            else:
                wire.append(item["image_base64"])
    if errors:
        raise ValidationFailed(
            f"{len(errors)} input(s) cannot be used with this {model.task} model.",
            errors=errors[:100],
        )
    return wire


def prediction_create(*, model: TrainedModel, inputs: list[str], actor: Actor) -> dict:
    """Run ``inputs`` (already validated) through ``model`` and bill the request.

    ``actor`` is who asks: an API key's spend cap is checked and its id is on the usage event.
    Returns ``{"id", "object", "model", "predictions": [{"label", "score", "scores"}], "usage"}``.
    Raises PaymentRequired (402) when the request cannot be billed, ServiceUnavailable (503)
    when no inference worker answers in time, WorkerError (502) when it cannot run the model.
    """
    billing_check(
        organization=model.organization,
        meter=Meter.PREDICTIONS,
        quantity=len(inputs),
        actor=actor,
    )
    request_id = new_id("pred")
    async_result = app.send_task(
        TaskName.PREDICT,
        kwargs={"organization_id": model.organization_id, "model_id": model.id, "inputs": inputs},
        queue=Queue.INFERENCE.value,
        expires=settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS,
    )
    try:
        answer = async_result.get(
            timeout=settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS, propagate=False
        )
    except CeleryTimeout:
        async_result.revoke()
        raise ServiceUnavailable(
            f"No inference worker answered within {settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS:g} s; "
            "retry later."
        ) from None
    finally:
        async_result.forget()
    if not isinstance(answer, dict) or "predictions" not in answer:
        raise WorkerError("The inference worker could not run the model.")
    with transaction.atomic():
        usage_record(
            organization_id=model.organization_id,
            meter=Meter.PREDICTIONS,
            quantity=len(inputs),
            occurred_at=timezone.now(),
            source_type="prediction",
            source_id=request_id,
            api_key_id=actor.api_key_id,
            model_id=model.id,
        )
    return {
        "id": request_id,
        "object": "prediction",
        "model": model.id,
        "predictions": answer["predictions"],
        "usage": {"predictions": len(inputs), "inference_ms": answer.get("inference_ms")},
    }
