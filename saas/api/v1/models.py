"""/v1/models: trained models, their SavedModel download, and online predictions."""

from __future__ import annotations

import json

from django.http import FileResponse, HttpResponse
from django.http.request import RawPostDataException
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from saas.common.errors import ValidationFailed
from saas.inference import client as inference_client
from saas.registry import selectors as model_selectors
from saas.registry import services as model_services
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, metrics_inline, page_of, represent
from ..parsers import JSONParser


class ModelOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    task = serializers.CharField()
    base_model = serializers.CharField()
    training_job = serializers.CharField(source="job_id")
    classes = serializers.ListField(child=serializers.CharField())
    metrics = serializers.SerializerMethodField(
        help_text="accuracy, macro_f1, per_class; confusion_matrix when it has at most "
        "TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES classes (all of it: "
        "GET /v1/training-jobs/{training_job}/confusion-matrix)"
    )
    version = serializers.IntegerField()
    artifact_bytes = serializers.IntegerField()
    artifact_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "model"

    def get_metrics(self, obj) -> dict | None:
        return metrics_inline(obj.metrics)


class ModelListOut(ModelOut):
    """A model in a list: ``metrics`` without ``per_class`` and ``confusion_matrix``."""

    metrics = serializers.SerializerMethodField(
        help_text="accuracy, macro_f1 and the other summary figures (no per-class parts)"
    )

    def get_metrics(self, obj) -> dict | None:
        return obj.metrics_summary


class PredictIn(serializers.Serializer):
    inputs = serializers.JSONField(
        required=False,
        help_text='text models: ["…"]; image models: [{"image_base64": "…"}] (or multipart `files`)',
    )


class PredictionOut(serializers.Serializer):
    # DRF's metaclass moves declared fields out of the class, so this does not shadow .label.
    label = serializers.CharField()  # type: ignore[assignment]
    score = serializers.FloatField()
    scores = serializers.DictField(child=serializers.FloatField())


class PredictOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    model = serializers.CharField()
    predictions = PredictionOut(many=True)
    usage = serializers.JSONField()


class ModelListView(TenantAPIView):
    """Trained models, newest first."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(
        operation_id="models_list",
        responses=page_of(ModelListOut, name="ModelList"),
        parameters=PAGE_PARAMS,
    )
    def get(self, request):
        return self.paginate(
            model_selectors.model_list_summaries(organization_id=self.organization.pk),
            ModelListOut,
        )


class ModelDetailView(TenantAPIView):
    """One trained model: classes, metrics, artifact size and SHA-256; or delete it."""

    actions = {"GET": Action.TRAINING_READ, "DELETE": Action.TRAINING_WRITE}

    @extend_schema(responses=ModelOut)
    def get(self, request, model_id: str):
        model = model_selectors.model_get_cached(
            organization_id=self.organization.pk, model_id=model_id
        )
        return Response(represent(ModelOut, model))

    @extend_schema(
        operation_id="models_destroy",
        description=(
            "Delete the model: its SavedModel is removed from storage (storage stops being "
            "billed for it), it is no longer listed, downloadable or served (the data plane's "
            "replicas are told at once), and the deletion is audited as `model.deleted`. "
            "Idempotent: deleting a deleted model answers 204 again. Another tenant's model "
            "is a 404."
        ),
        responses={204: None},
    )
    def delete(self, request, model_id: str):
        model = model_selectors.model_get_for_delete(
            organization_id=self.organization.pk, model_id=model_id
        )
        model_services.model_delete(model=model, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelDownloadView(TenantAPIView):
    """The SavedModel as a ``.tar.gz`` (``saved_model/``; labels in ``assets/labels.txt``)."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(
        responses={(200, "application/gzip"): OpenApiResponse(description="SavedModel .tar.gz")}
    )
    def get(self, request, model_id: str):
        model = model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        response = FileResponse(
            model_services.model_download(model=model, actor=self.actor),
            as_attachment=True,
            filename=f"{model.pk}-v{model.version}-saved_model.tar.gz",
            content_type="application/gzip",
        )
        response["Content-Length"] = str(model.artifact_bytes)
        response["X-Content-SHA256"] = model.artifact_sha256
        return response


class ModelPredictView(TenantAPIView):
    """Predict: 1–256 texts, or images as base64 JSON or multipart ``files``.

    Answered by the data plane (``serve``), where the reverse proxy sends this route. A
    request that reaches the web tier anyway is forwarded to it unchanged (the caller's API key,
    or for a signed-in member a short-lived internal token), so the answer is the data plane's
    in every case: this view only documents the route in the OpenAPI schema and forwards.
    The model is looked up first, so another tenant's or a missing one is this tier's 404
    even when the data plane is down (tenant isolation never depends on it being up).
    """

    actions = {"POST": Action.MODELS_PREDICT}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(request=PredictIn, responses=PredictOut)
    def post(self, request, model_id: str):
        model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        if self.api_key is None:
            token = inference_client.internal_token(
                organization_id=self.organization.pk, user_id=request.user.pk
            )
            authorization = f"Internal {token}"
        content_type = request.META.get("CONTENT_TYPE", "application/json")
        if not content_type.isascii() or not content_type.isprintable():
            # Forwarded as a header, which must be ASCII (a UnicodeEncodeError, 500, before).
            raise exceptions.UnsupportedMediaType(content_type.encode("unicode_escape").decode())
        try:
            body = request._request.body
        except RawPostDataException:
            # The base view already parsed it (an Idempotency-Key fingerprint): re-encode.
            if request.FILES:
                raise ValidationFailed(
                    "Send multipart predictions to the data plane without an Idempotency-Key."
                ) from None
            body, content_type = json.dumps(request.data).encode(), "application/json"
        answer = inference_client.data_plane_predict(
            model_id=model_id,
            authorization=authorization,
            content_type=content_type,
            body=body,
        )
        response = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
        for name, value in answer.headers.items():
            response[name] = value
        if any(name.lower().startswith("ratelimit-") for name in answer.headers):
            # The data plane's input-weighted limit is the one predictions are held to: keep
            # its RateLimit-* figures rather than this tier's per-request ones.
            self._rate_headers = {}
        return response
