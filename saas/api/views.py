"""/v1 endpoints: thin views over services (writes) and selectors (reads)."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from saas.common.errors import PayloadTooLarge, ValidationFailed
from saas.datasets import selectors as dataset_selectors
from saas.datasets import services as dataset_services
from saas.inference import services as inference
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.metering.selectors import usage_by_meter_and_day
from saas.registry import selectors as model_selectors

from . import serializers as s
from .base import TenantAPIView

MAX_MISCLASSIFIED_PAGE = 100


def _validated(serializer_class, data, **kwargs):
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class DatasetListView(TenantAPIView):
    scopes = {"GET": "datasets:read", "POST": "datasets:write"}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=s.DatasetOut(many=True))
    def get(self, request):
        return self.paginate(
            dataset_selectors.dataset_list(organization=self.organization), s.DatasetOut
        )

    @extend_schema(
        request={"multipart/form-data": s.DatasetCreateIn}, responses={201: s.DatasetOut}
    )
    def post(self, request):
        # Refuse an oversized body before reading it (multipart overhead allowed for).
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        limit = settings.TRAINYARD_MAX_UPLOAD_BYTES
        if length > limit + 64 * 1024:
            raise PayloadTooLarge(
                f"The request is {length} bytes; the upload limit is {limit} bytes.",
                limit_bytes=limit,
            )
        data = _validated(s.DatasetCreateIn, request.data)
        upload = data["file"]
        dataset = dataset_services.dataset_create(
            organization=self.organization,
            file=upload,
            size=upload.size,
            task=data["task"],
            name=data.get("name") or upload.name or "dataset",
            text_column=data["text_column"],
            label_column=data["label_column"],
            api_key=self.api_key,
        )
        return Response(s.DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(TenantAPIView):
    scopes = {"GET": "datasets:read", "DELETE": "datasets:write"}

    @extend_schema(responses=s.DatasetOut)
    def get(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        return Response(s.DatasetOut(ds).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        dataset_services.dataset_delete(dataset=ds)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrainingJobListView(TenantAPIView):
    scopes = {"GET": "training:read", "POST": "training:write"}
    parser_classes = [JSONParser]

    @extend_schema(responses=s.TrainingJobOut(many=True))
    def get(self, request):
        qs = job_selectors.training_job_list(organization_id=self.organization.pk)
        if request.query_params.get("status"):
            qs = qs.filter(status=request.query_params["status"])
        return self.paginate(qs, s.TrainingJobOut)

    @extend_schema(request=s.TrainingJobCreateIn, responses={201: s.TrainingJobOut})
    def post(self, request):
        data = _validated(s.TrainingJobCreateIn, request.data)
        try:
            dataset = dataset_selectors.dataset_get(
                organization=self.organization, dataset_id=data["dataset"]
            )
        except Exception:  # another tenant's id is the same 400 as a missing one
            raise ValidationFailed(
                "Unknown dataset.",
                errors=[{"field": "dataset", "message": f"no dataset {data['dataset']!r}"}],
            ) from None
        job = job_services.training_job_create(
            organization=self.organization,
            dataset=dataset,
            base_model=data.get("base_model"),
            hyperparameters=data.get("hyperparameters"),
            seed=data["seed"],
            device=data["device"],
            api_key=self.api_key,
        )
        return Response(s.TrainingJobOut(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(responses=s.TrainingJobOut)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(s.TrainingJobOut(job).data)


class TrainingJobCancelView(TenantAPIView):
    scopes = {"POST": "training:write"}

    @extend_schema(request=None, responses=s.TrainingJobOut)
    def post(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        job = job_services.training_job_cancel(job=job)
        return Response(s.TrainingJobOut(job).data)


class TrainingJobEventsView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(responses=s.JobEventOut(many=True))
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        events = job_selectors.training_job_events(job=job)
        return Response(
            {"object": "list", "data": s.JobEventOut(events, many=True).data, "next_cursor": None}
        )


class TrainingJobMisclassifiedView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(
        responses={200: OpenApiResponse(description="list of misclassified validation examples")}
    )
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        try:
            limit = max(1, min(int(request.query_params.get("limit", 20)), MAX_MISCLASSIFIED_PAGE))
        except ValueError:
            raise ValidationFailed(
                "limit must be an integer.",
                errors=[{"field": "limit", "message": "must be an integer"}],
            ) from None
        rows = (job.misclassified or [])[:limit]
        return Response(
            {
                "object": "list",
                "data": rows,
                "total": len(job.misclassified or []),
                "next_cursor": None,
            }
        )


class ModelListView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(responses=s.ModelOut(many=True))
    def get(self, request):
        return self.paginate(
            model_selectors.model_list(organization_id=self.organization.pk), s.ModelOut
        )


class ModelDetailView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(responses=s.ModelOut)
    def get(self, request, model_id: str):
        model = model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        return Response(s.ModelOut(model).data)


class ModelDownloadView(TenantAPIView):
    scopes = {"GET": "training:read"}

    @extend_schema(
        responses={(200, "application/gzip"): OpenApiResponse(description="SavedModel .tar.gz")}
    )
    def get(self, request, model_id: str):
        model = model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        response = FileResponse(
            default_storage.open(model.artifact_key, "rb"),
            as_attachment=True,
            filename=f"{model.pk}-v{model.version}-saved_model.tar.gz",
            content_type="application/gzip",
        )
        response["Content-Length"] = str(model.artifact_bytes)
        response["X-Content-SHA256"] = model.artifact_sha256
        return response


class ModelPredictView(TenantAPIView):
    scopes = {"POST": "models:predict"}
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(request=s.PredictIn, responses=s.PredictOut)
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
        return Response(inference.prediction_create(model=model, inputs=wire, api_key=self.api_key))


class UsageView(TenantAPIView):
    scopes = {"GET": "usage:read"}

    @extend_schema(responses={200: OpenApiResponse(description="usage by meter and day")})
    def get(self, request):
        rows = usage_by_meter_and_day(organization_id=self.organization.pk)
        return Response({"object": "list", "data": rows, "next_cursor": None})
