"""/v1/models: trained models, their SavedModel download, and online predictions."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from saas.common.errors import ValidationFailed
from saas.inference import services as inference
from saas.registry import selectors as model_selectors
from saas.registry import services as model_services
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of, represent
from ..parsers import JSONParser


class ModelOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    task = serializers.CharField()
    base_model = serializers.CharField()
    training_job = serializers.CharField(source="job_id")
    classes = serializers.ListField(child=serializers.CharField())
    metrics = serializers.JSONField()
    version = serializers.IntegerField()
    artifact_bytes = serializers.IntegerField()
    artifact_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "model"


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

    @extend_schema(operation_id="models_list", responses=page_of(ModelOut), parameters=PAGE_PARAMS)
    def get(self, request):
        return self.paginate(
            model_selectors.model_list(organization_id=self.organization.pk), ModelOut
        )


class ModelDetailView(TenantAPIView):
    """One trained model: classes, metrics, artifact size and SHA-256."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=ModelOut)
    def get(self, request, model_id: str):
        model = model_selectors.model_get_cached(
            organization_id=self.organization.pk, model_id=model_id
        )
        return Response(represent(ModelOut, model))


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
    """Predict: 1–256 texts, or images as base64 JSON or multipart ``files``."""

    actions = {"POST": Action.MODELS_PREDICT}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(request=PredictIn, responses=PredictOut)
    def post(self, request, model_id: str):
        model = model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        files = [f.read() for f in request.FILES.getlist("files")] if request.FILES else None
        inputs = (
            None
            if files
            else (request.data.get("inputs") if hasattr(request.data, "get") else None)
        )
        if not files and (not hasattr(request.data, "get") or "inputs" not in request.data):
            raise ValidationFailed(
                "Send inputs.", errors=[{"field": "inputs", "message": "this field is required"}]
            )
        wire = inference.prediction_inputs_validate(model=model, inputs=inputs, files=files)
        return Response(inference.prediction_create(model=model, inputs=wire, actor=self.actor))
