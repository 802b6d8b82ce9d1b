"""Turning a request body into model inputs, with the work it may cause bounded up front.

Text models take ``{"inputs": ["…", …]}``; image models ``{"inputs": [{"image_base64": "…"}]}``
or multipart ``files``. Every problem is collected and answered at once as a 400
(``errors: [{"field", "message"}]``). Bounds, all checked before anything expensive: the body's
size (413, from ``Content-Length`` before it is read and again while reading), the number of
inputs, characters per text, bytes per image, and decoded pixels, per image and summed over
the request, read from the image *headers* (Pillow's lazy ``open`` parses the header only):
a 40-megapixel PNG costs nothing to refuse. Decoding itself happens in TensorFlow, in the
model execution; an image that passes the header check but does not decode fails its own
request only (``serve.runtime``).
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import orjson
from django.conf import settings
from PIL import Image, UnidentifiedImageError
from starlette.requests import Request

from saas.contract.tasks import TEXT
from saas.inference.selectors import ServingModel

from .config import ServeConfig
from .errors import Problem, invalid

MAX_IMAGE_BYTES = 10 * 1024 * 1024
FORMATS = ("JPEG", "PNG")


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "payload-too-large",
        "The request body is too large",
        f"Request bodies are limited to {limit} bytes; send fewer or smaller inputs per request.",
    )


UNKNOWN_LENGTH_WEIGHT = 256 * 1024


def request_weight(request: Request) -> int:
    """How heavy a request is before its body is read: its ``Content-Length`` (a chunked
    body without one counts as :data:`UNKNOWN_LENGTH_WEIGHT` bytes)."""
    declared = request.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else UNKNOWN_LENGTH_WEIGHT


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) past ``limit`` bytes before or while reading."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise too_large(limit)
        except ValueError:
            raise Problem(400, "bad-request", "Bad request", "Invalid Content-Length.") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """The JSON document in ``body``; 400 ``malformed-request`` when it is not one."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400,
            "malformed-request",
            "The request body could not be parsed",
            f"JSON parse error - {exc}",
        ) from None


def image_problem(blob: bytes, budget: list[int]) -> str | None:
    """Why ``blob`` is not an acceptable image, from its header alone, or None. ``budget`` is
    a one-element list holding the request's remaining pixels; it is decremented."""
    if len(blob) > MAX_IMAGE_BYTES:
        return f"image is over {MAX_IMAGE_BYTES} bytes"
    try:
        with Image.open(io.BytesIO(blob)) as img:  # lazy: parses the header only
            width, height = img.size
            fmt = img.format
    except Image.DecompressionBombError:  # Pillow's own bound (2x its MAX_IMAGE_PIXELS)
        return "image has more pixels than the limit"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "not a decodable JPEG or PNG image"
    if fmt not in FORMATS:
        return f"{fmt} is not supported (JPEG or PNG)"
    pixels = width * height
    if pixels > settings.TRAINYARD_MAX_IMAGE_PIXELS:
        return f"{width}x{height} pixels is over the limit"
    if pixels > budget[0]:
        return "the request's images add up to more pixels than one request may decode"
    budget[0] -= pixels
    return None


def model_inputs(
    *, model: ServingModel, items: Any, config: ServeConfig, field: str = "inputs"
) -> list[bytes]:
    """Validate ``items`` (the decoded ``inputs`` array, or a list of ``{"image_base64"}``
    built from multipart files) for ``model``; returns one ``bytes`` per input (UTF-8 text, or
    the image file's bytes). Raises :class:`Problem` 400 listing every problem found."""
    if not isinstance(items, list):
        raise invalid(
            "inputs must be a list.", [{"field": field, "message": "must be a JSON array"}]
        )
    if not items:
        raise invalid("inputs is empty.", [{"field": field, "message": "send at least one input"}])
    limit = config.max_inputs
    if len(items) > limit:
        raise invalid(
            f"At most {limit} inputs per request.",
            [{"field": field, "message": f"{len(items)} inputs > limit {limit}"}],
        )
    errors: list[dict[str, str]] = []
    out: list[bytes] = []
    if model.task == TEXT:
        for i, item in enumerate(items):
            where = f"{field}[{i}]"
            if not isinstance(item, str):
                errors.append({"field": where, "message": "this text model takes strings"})
            elif len(item) > config.max_text_chars:
                errors.append(
                    {"field": where, "message": f"over {config.max_text_chars} characters"}
                )
            else:
                try:
                    out.append(item.encode("utf-8"))
                except UnicodeEncodeError:
                    errors.append(
                        {"field": where, "message": "contains a lone surrogate; send valid Unicode"}
                    )
    else:
        budget = [config.max_request_pixels]
        for i, item in enumerate(items):
            where = f"{field}[{i}]"
            if isinstance(item, bytes):
                blob = item
            elif isinstance(item, dict) and isinstance(item.get("image_base64"), str):
                try:
                    blob = base64.b64decode(item["image_base64"], validate=True)
                except (binascii.Error, ValueError):
                    errors.append({"field": where, "message": "image_base64 is not valid base64"})
                    continue
            else:
                errors.append(
                    {
                        "field": where,
                        "message": 'this image model takes {"image_base64": "…"} objects',
                    }
                )
                continue
            problem = image_problem(blob, budget)
            if problem:
                errors.append({"field": where, "message": problem})
            else:
                out.append(blob)
    if errors:
        raise invalid(
            f"{len(errors)} input(s) cannot be used with this {model.task} model.", errors
        )
    return out


async def request_inputs(request: Request, model: ServingModel, config: ServeConfig) -> list[bytes]:
    """The inputs of a ``/v1/models/{id}/predict`` request (JSON or multipart ``files``)."""
    content_type = request.headers.get("content-type", "").strip()
    media_type = content_type.lower()  # media types are case-insensitive (RFC 9110 §8.3.1)
    if media_type.startswith("multipart/form-data"):
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            raise too_large(config.max_body_bytes)
        if model.task == TEXT:
            raise invalid(
                'This is a text model; send {"inputs": ["…"]}.',
                [{"field": "files", "message": "files are only accepted by image models"}],
            )
        # Read (and bound) the body first, as for JSON: a chunked body has no Content-Length
        # to refuse up front, and the form parser alone would read whatever comes.
        body = await read_body(request, config.max_body_bytes)

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(
                max_files=config.max_inputs + 1, max_fields=16, max_part_size=MAX_IMAGE_BYTES + 1
            )
        except Exception as exc:  # python-multipart's errors and Starlette's limits
            raise Problem(
                400, "malformed-request", "The request body could not be parsed", str(exc)[:300]
            ) from None
        try:
            files = [await f.read() for f in form.getlist("files") if hasattr(f, "read")]
        finally:
            await form.close()
        if not files:
            raise invalid("Send inputs.", [{"field": "files", "message": "no files were sent"}])
        return model_inputs(model=model, items=files, config=config, field="files")
    if media_type and not media_type.startswith("application/json"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f'Unsupported media type "{content_type}" in request; send application/json '
            "or multipart/form-data.",
        )
    doc = parse_json(await read_body(request, config.max_body_bytes))
    if not isinstance(doc, dict) or "inputs" not in doc:
        raise invalid("Send inputs.", [{"field": "inputs", "message": "this field is required"}])
    return model_inputs(model=model, items=doc["inputs"], config=config)
