"""/v1 endpoints: thin views over services (writes) and selectors (reads)."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from saas.common.errors import Conflict, PayloadTooLarge, ValidationFailed
from saas.datasets import selectors as dataset_selectors
from saas.datasets import services as dataset_services
from saas.inference import services as inference
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.metering.selectors import usage_by_meter_and_day
from saas.registry import selectors as model_selectors
from saas.registry import services as model_services
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of, paginate_list
from ..parsers import JSONParser
from . import serializers as s


def _validated(serializer_class, data, **kwargs):
    """Validate ``data`` with ``serializer_class``; unknown top-level fields are a 400 too
    (a typo such as ``hyperparameter`` must not be silently ignored)."""
    if hasattr(data, "keys"):
        known = set(serializer_class().fields)
        unknown = sorted(k for k in data.keys() if k not in known)
        if unknown:
            raise ValidationFailed(
                f"Unknown field(s): {', '.join(unknown)}.",
                errors=[
                    {"field": k, "message": f"unknown; known fields: {', '.join(sorted(known))}"}
                    for k in unknown
                ],
            )
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


class DatasetListView(TenantAPIView):
    """Datasets: list them, or upload a CSV (text) or ZIP of class folders (images)."""

    actions = {"GET": Action.DATASETS_READ, "POST": Action.DATASETS_WRITE}
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="datasets_list", responses=page_of(s.DatasetOut), parameters=PAGE_PARAMS
    )
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
            actor=self.actor,
        )
        return Response(s.DatasetOut(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailView(TenantAPIView):
    """One dataset: read it, or delete it (409 while a queued or running job uses it)."""

    actions = {"GET": Action.DATASETS_READ, "DELETE": Action.DATASETS_WRITE}

    @extend_schema(responses=s.DatasetOut)
    def get(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        return Response(s.DatasetOut(ds).data)

    @extend_schema(responses={204: None})
    def delete(self, request, dataset_id: str):
        ds = dataset_selectors.dataset_get(organization=self.organization, dataset_id=dataset_id)
        dataset_services.dataset_delete(dataset=ds, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TrainingJobListView(TenantAPIView):
    """Training jobs: list them (``?status=``), or start one on a dataset."""

    actions = {"GET": Action.TRAINING_READ, "POST": Action.TRAINING_WRITE}
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="training_jobs_list",
        responses=page_of(s.TrainingJobOut),
        parameters=PAGE_PARAMS,
    )
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
        if data["dry_run"]:
            return Response(
                job_services.training_job_estimate(
                    organization=self.organization,
                    dataset=dataset,
                    base_model=data.get("base_model"),
                    hyperparameters=data.get("hyperparameters"),
                    device=data["device"],
                )
            )
        job = job_services.training_job_create(
            organization=self.organization,
            dataset=dataset,
            base_model=data.get("base_model"),
            hyperparameters=data.get("hyperparameters"),
            seed=data["seed"],
            device=data["device"],
            actor=self.actor,
        )
        # Re-read through the selector: queue position and model come with the row.
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job.pk)
        return Response(s.TrainingJobOut(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(TenantAPIView):
    """One training job: status, progress, queue position, metrics, model, usage."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=s.TrainingJobOut)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(s.TrainingJobOut(job).data)


class TrainingJobCancelView(TenantAPIView):
    """Cancel a queued job now, or stop a running one before its next batch."""

    actions = {"POST": Action.TRAINING_WRITE}

    @extend_schema(request=None, responses=s.TrainingJobOut)
    def post(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        job_services.training_job_cancel(job=job, actor=self.actor)
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(s.TrainingJobOut(job).data)


class TrainingJobEventsView(TenantAPIView):
    """The job's timeline, oldest first: created, started, one event per epoch, finished."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=page_of(s.JobEventOut), parameters=PAGE_PARAMS)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        events = job_selectors.training_job_events(job=job)
        return self.paginate(events, s.JobEventOut, ordering=("created_at", "pk"))


class TrainingJobMisclassifiedView(TenantAPIView):
    """Validation examples the model got wrong, most confident mistakes first (up to 200 kept)."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=page_of(s.MisclassifiedOut), parameters=PAGE_PARAMS)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        if job.status != "succeeded":
            raise Conflict(
                f"The job is {job.status}; misclassified examples exist once it has succeeded."
            )
        return paginate_list(request, self, job.misclassified or [])


class ModelListView(TenantAPIView):
    """Trained models, newest first."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(
        operation_id="models_list", responses=page_of(s.ModelOut), parameters=PAGE_PARAMS
    )
    def get(self, request):
        return self.paginate(
            model_selectors.model_list(organization_id=self.organization.pk), s.ModelOut
        )


class ModelDetailView(TenantAPIView):
    """One trained model: classes, metrics, artifact size and SHA-256."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=s.ModelOut)
    def get(self, request, model_id: str):
        model = model_selectors.model_get(organization_id=self.organization.pk, model_id=model_id)
        return Response(s.ModelOut(model).data)


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
        return Response(inference.prediction_create(model=model, inputs=wire, actor=self.actor))


class UsageView(TenantAPIView):
    """Usage by meter and day (UTC) for the caller's organisation."""

    actions = {"GET": Action.USAGE_READ}

    @extend_schema(responses={200: OpenApiResponse(description="usage by meter and day")})
    def get(self, request):
        group_by = request.query_params.get("group_by") or None
        if group_by not in (None, "api_key", "model"):
            raise ValidationFailed(
                "Unknown group_by.", errors=[{"field": "group_by", "message": "api_key or model"}]
            )
        rows = usage_by_meter_and_day(organization_id=self.organization.pk, group_by=group_by)
        return Response({"object": "list", "data": rows, "next_cursor": None})
