"""Model pages: the list, one model with its code snippets, and the try-it box."""

from __future__ import annotations

import base64
import json

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from saas.common.errors import DomainError, ValidationFailed
from saas.datasets.models import Task
from saas.inference import client as inference_client
from saas.registry import selectors as model_selectors
from saas.registry import services as model_services
from saas.tenancy.permissions import Action

from ..base import org_page
from ..presenters.common import problem_list
from ..presenters.models import prediction_result, snippets
from .common import LIST_LIMIT, page

#: The largest image the try-it box sends to the model (bytes).
TRY_IMAGE_MAX_BYTES = 10 * 1024 * 1024


@org_page(read=Action.TRAINING_READ)
@require_GET
def models(request):
    """Trained models, newest first."""
    rows = model_selectors.model_list_summaries(organization_id=request.tenant.organization.pk)
    return page(request, "dashboard/models/list.html", {"models": rows[:LIST_LIMIT]})


def _model_context(request, model) -> dict:
    """The model page's context; the snippets name the host the browser used."""
    return {
        "model": model,
        "is_text": model.task == Task.TEXT_CLASSIFICATION,
        "metrics": model.metrics or {},
        "snippets": snippets(
            base_url=request.build_absolute_uri("/").rstrip("/"),
            model_id=model.pk,
            task=model.task,
        ),
    }


@org_page(read=Action.TRAINING_READ)
@require_GET
def model_detail(request, model_id: str):
    """One model: try-it box, metrics, code snippets for this host, SavedModel download."""
    model = model_selectors.model_get(
        organization_id=request.tenant.organization.pk, model_id=model_id
    )
    return page(request, "dashboard/models/detail.html", _model_context(request, model))


@org_page(read=Action.MODELS_PREDICT, write=Action.MODELS_PREDICT)
@require_POST
def model_try(request, model_id: str):
    """Run one text or image through the model (billed as one prediction).

    The data plane answers it, as it answers the API (``saas.inference.client``): the member
    is named by a short-lived signed token, and serve checks their role, the organisation's
    suspension, rate limits, quota and spend caps like for any caller."""
    model = model_selectors.model_get(
        organization_id=request.tenant.organization.pk, model_id=model_id
    )
    text = request.POST.get("text", "")
    upload = request.FILES.get("image")
    result, problem, status = None, None, 200
    try:
        if model.task == Task.TEXT_CLASSIFICATION:
            if not text.strip():
                raise ValidationFailed("Type a text to classify.")
            inputs: list = [text]
        else:
            if upload is None:
                raise ValidationFailed("Choose or drop an image to classify.")
            if upload.size > TRY_IMAGE_MAX_BYTES:
                raise ValidationFailed("The image is over 10 MB.")
            inputs = [{"image_base64": base64.b64encode(upload.read()).decode()}]
        token = inference_client.internal_token(
            organization_id=request.tenant.organization.pk, user_id=request.user.pk
        )
        answer = inference_client.data_plane_predict(
            model_id=model.pk,
            authorization=f"Internal {token}",
            content_type="application/json",
            body=json.dumps({"inputs": inputs}).encode(),
        )
        try:
            body = json.loads(answer.body or b"{}")
        except ValueError:  # not JSON: whatever answered was not the data plane
            body = {"detail": "The prediction service answered something unexpected."}
        if answer.status == 200:
            result = prediction_result(body)
        else:
            errors = body.get("errors") or []
            problem = "; ".join(
                [body.get("detail", "The prediction failed.")]
                + [e["message"] for e in problem_list(errors)]
            )
            status = answer.status
    except DomainError as exc:
        problem = "; ".join([exc.detail] + [e["message"] for e in problem_list(exc.errors)])
        status = exc.status
    context = {**_model_context(request, model), "result": result, "problem": problem, "text": text}
    if request.htmx:
        # A 4xx fragment is still swapped in (htmx-config in base.html).
        return page(request, "dashboard/models/_prediction.html", context, status=status)
    return page(request, "dashboard/models/detail.html", context, status=status)


@org_page(write=Action.TRAINING_WRITE)
@require_POST
def model_delete(request, model_id: str):
    """Delete a model (the confirmation is the form on its page); audited as ``model.deleted``.
    A model already deleted is a 404 here, like a missing one."""
    model = model_selectors.model_get(
        organization_id=request.tenant.organization.pk, model_id=model_id
    )
    model_services.model_delete(model=model, actor=request.tenant.actor)
    messages.success(request, f"Model {model.pk} deleted.")
    return redirect("dashboard:models")
