"""The Open Inference Protocol v2 (KServe's "V2 inference protocol", also Triton's and
MLServer's HTTP/REST API): https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/

A Trainyard model has one input tensor, ``inputs``: ``BYTES`` of shape ``[n]`` (or ``[n, 1]``),
each element a UTF-8 text for text models or a base64-encoded JPEG/PNG for image models (the
protocol's JSON has no raw bytes; ``parameters.content_type: "base64"`` is implied and
accepted). Outputs: ``scores`` (``FP32``, ``[n, classes]``, in the order of the model's
``classes``) and ``label`` (``BYTES``, ``[n]``, the best class). ``outputs`` in the request
selects among them. Authentication, admission and metering are the v1 route's, and the usage
comes back under ``parameters.usage``. Errors are problem+json with the protocol's ``error``
member as well, so both kinds of client read them.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from saas.contract.tasks import TEXT

from . import metrics
from .errors import Problem, invalid
from .inputs import model_inputs, parse_json, read_body, request_weight
from .logctx import bind_prediction
from .responses import SLOW_ANSWER_SECONDS, CommittedResponse

SERVER = {"name": "trainyard-serve", "version": "1", "extensions": []}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )


def _problem(problem: Problem) -> Response:
    problem.extra.setdefault("error", problem.detail)
    return problem.response()


async def _principal_and_model(request: Request):
    plane = request.app.state.plane
    principal = await plane.auth.authenticate(request.headers.get("authorization"))
    bind_prediction(
        organization_id=principal.organization_id, model_id=request.path_params["model_id"]
    )
    plane.check_access(principal)
    model = await plane.model_for(principal, request.path_params["model_id"])
    version = request.path_params.get("version")
    if version is not None and version != str(model.version):
        raise Problem(404, "not-found", "Not found", f"Model {model.id} has no version {version}.")
    return plane, principal, model


def _metadata(model) -> dict[str, Any]:
    return {
        "name": model.id,
        "versions": [str(model.version)],
        "platform": "tensorflow_savedmodel",
        "inputs": [{"name": "inputs", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "scores", "datatype": "FP32", "shape": [-1, len(model.classes)]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
        "parameters": {
            "task": model.task,
            "classes": list(model.classes),
            "base_model": model.base_model,
            "content_type": "str" if model.task == TEXT else "base64",
        },
    }


async def server_metadata(request: Request) -> Response:
    return _json(SERVER)


async def model_metadata(request: Request) -> Response:
    try:
        _plane, _principal, model = await _principal_and_model(request)
    except Problem as problem:
        return _problem(problem)
    return _json(_metadata(model))


async def model_ready(request: Request) -> Response:
    """Ready when the model exists for the caller (it loads on first use if not in memory;
    ``loaded`` says whether it already is)."""
    try:
        plane, _principal, model = await _principal_and_model(request)
    except Problem as problem:
        return _problem(problem)
    return _json({"name": model.id, "ready": True, "loaded": model.id in plane.store.loaded()})


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(_flatten(item) if isinstance(item, list) else [item])
    return out


def _tensor_inputs(doc: Any, model) -> list[Any]:
    if not isinstance(doc, dict):
        raise invalid(
            "The body must be an inference request object.",
            [{"field": "", "message": "must be a JSON object"}],
        )
    tensors = doc.get("inputs")
    if not isinstance(tensors, list) or len(tensors) != 1 or not isinstance(tensors[0], dict):
        raise invalid(
            "Send exactly one input tensor, named inputs.",
            [{"field": "inputs", "message": "must be a list holding one tensor object"}],
        )
    tensor = tensors[0]
    errors = []
    if tensor.get("datatype") != "BYTES":
        errors.append({"field": "inputs[0].datatype", "message": "must be BYTES"})
    shape = tensor.get("shape")
    data = tensor.get("data")
    if not isinstance(data, list):
        errors.append({"field": "inputs[0].data", "message": "must be an array"})
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        errors.append({"field": "inputs[0].shape", "message": "must be a list of sizes, e.g. [n]"})
    if errors:
        raise invalid("The input tensor is not valid.", errors)
    assert isinstance(shape, list)  # checked above
    flat = _flatten(data)
    size = 1
    for d in shape:
        size *= d
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1) or size != len(flat):
        raise invalid(
            "The input tensor's shape does not match its data.",
            [
                {
                    "field": "inputs[0].shape",
                    "message": f"expected [n] or [n, 1] holding {len(flat)} elements",
                }
            ],
        )
    if model.task == TEXT:
        return flat
    return [{"image_base64": x} if isinstance(x, str) else x for x in flat]


async def infer(request: Request) -> Response:
    started = time.monotonic()
    label = "unknown"
    try:
        plane, principal, model = await _principal_and_model(request)
        label = model.id
        async with plane.gate.request(principal, model.id, request_weight(request), started):
            doc = parse_json(await read_body(request, plane.config.max_body_bytes))
            items = _tensor_inputs(doc, model)
            inputs = model_inputs(
                model=model, items=items, config=plane.config, field="inputs[0].data"
            )
            wanted = {"scores", "label"}
            if isinstance(doc.get("outputs"), list):
                asked = {o.get("name") for o in doc["outputs"] if isinstance(o, dict)}
                wanted = {name for name in wanted if name in asked}
                if not wanted:
                    raise invalid(
                        "Unknown outputs requested.",
                        [
                            {
                                "field": "outputs",
                                "message": "this model's outputs are scores and label",
                            }
                        ],
                    )
            answer = await plane.predict(
                principal=principal,
                model=model,
                inputs=inputs,
                started=started,
                receive=request.receive,
            )
    except Problem as problem:
        metrics.REQUESTS.labels(model=label, status=str(problem.status)).inc()
        if problem.status == 401:
            metrics.REFUSALS.labels(reason="unauthenticated").inc()
        return _problem(problem)
    metrics.REQUESTS.labels(model=label, status="200").inc()
    metrics.INPUTS.labels(model=label).inc(len(inputs))
    metrics.LATENCY.labels(model=label).observe(time.monotonic() - started)
    n = len(answer.predictions)
    classes = list(model.classes)
    outputs = []
    if "scores" in wanted:
        outputs.append(
            {
                "name": "scores",
                "datatype": "FP32",
                "shape": [n, len(classes)],
                "data": [p["scores"][c] for p in answer.predictions for c in classes],
            }
        )
    if "label" in wanted:
        outputs.append(
            {
                "name": "label",
                "datatype": "BYTES",
                "shape": [n],
                "data": [p["label"] for p in answer.predictions],
            }
        )
    body = {
        "model_name": model.id,
        "model_version": str(model.version),
        "id": doc.get("id") if isinstance(doc.get("id"), str) else answer.id,
        "parameters": {
            "usage": {
                "predictions": n,
                "inference_ms": answer.inference_ms,
                "cold_start": answer.cold_start,
            }
        },
        "outputs": outputs,
    }
    return CommittedResponse(
        orjson.dumps(body),
        commit=answer.commit,
        release=answer.release,
        headers=answer.headers,
        check_disconnect=time.monotonic() - started > SLOW_ANSWER_SECONDS,
    )


def routes() -> list[Route]:
    out = [Route("/v2", server_metadata, methods=["GET"])]
    for prefix in ("/v2/models/{model_id}", "/v2/models/{model_id}/versions/{version}"):
        out += [
            Route(prefix, model_metadata, methods=["GET"]),
            Route(prefix + "/ready", model_ready, methods=["GET"]),
            Route(prefix + "/infer", infer, methods=["POST"]),
        ]
    return out
