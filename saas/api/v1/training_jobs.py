"""/v1/training-jobs: start (or estimate) a job, list and read jobs, cancel, the timeline, the
misclassified validation examples, the confusion matrix (JSON or CSV).

A job's metrics grow with its classes, its confusion matrix with their square (2,000 classes:
4 M cells, ~8 MB). So lists carry the metrics without ``per_class`` and ``confusion_matrix``
(cut in SQL, never read); one job carries ``per_class``, and ``confusion_matrix`` only up to
``TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES`` classes; every job with a matrix links
``confusion_matrix_url``, the download of the whole matrix.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any, cast

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.response import Response

from saas.common.errors import Conflict, ValidationFailed
from saas.contract import HYPERPARAMETERS, Hyperparameter
from saas.datasets import selectors as dataset_selectors
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.jobs.usage import JobUsage
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, metrics_inline, page_of, paginate_list
from ..parsers import JSONParser
from .common import validated

_FIELD_FOR_TYPE = {
    int: serializers.IntegerField,
    float: serializers.FloatField,
    bool: serializers.BooleanField,
}


def _hyperparameter_field(h: Hyperparameter) -> serializers.Field:
    """A schema field with the contract's type, bounds and help text."""
    if h.choices:
        return serializers.ChoiceField(
            choices=list(h.choices), required=False, help_text=h.help_text()
        )
    kwargs = {} if h.type is bool else {"min_value": h.minimum, "max_value": h.maximum}
    return _FIELD_FOR_TYPE[h.type](required=False, help_text=h.help_text(), **kwargs)


# Documented for the schema, one field per hyperparameter of the contract (so the docs cannot
# drift); the values are checked by ``saas.contract.hyperparameters.resolve``.
HyperparametersIn = type(
    "HyperparametersIn",
    (serializers.Serializer,),
    {
        "__doc__": "Hyperparameters; which ones a base model accepts is in each help text.",
        "__module__": __name__,
        **{name: _hyperparameter_field(h) for name, h in HYPERPARAMETERS.items()},
    },
)


@extend_schema_field(HyperparametersIn)
class HyperparametersField(serializers.JSONField):
    """Any JSON value, documented as :data:`HyperparametersIn`: the contract checks it (and
    lists every bad field at once), so DRF does not check the types here."""


class TrainingJobCreateIn(serializers.Serializer):
    dataset = serializers.CharField(max_length=64)
    base_model = serializers.CharField(max_length=64, required=False, allow_null=True)
    hyperparameters = HyperparametersField(
        required=False,
        default=dict,
        help_text="Unset ones take the base model's defaults; every bad field is listed in the 400.",
    )
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)
    device = serializers.ChoiceField(choices=["cpu", "gpu"], required=False, default="cpu")
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="estimate seconds and price without creating a job"
    )


class JobUsageField(serializers.JSONField):
    """A job's stored ``usage`` written out through :class:`~saas.jobs.usage.JobUsage` (the one
    definition of its shape); the same JSON schema as before (any object)."""

    # Any: a JSON field's representation is any JSON value (the stubs say str).
    def to_representation(self, value: Any) -> Any:
        return JobUsage.from_dict(value).to_dict()


class TrainingJobOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    status = serializers.CharField()
    dataset = serializers.CharField(source="dataset_id")
    task = serializers.CharField()
    base_model = serializers.CharField()
    device = serializers.CharField()
    hyperparameters = serializers.JSONField()
    seed = serializers.IntegerField()
    progress = serializers.SerializerMethodField()
    queue_position = serializers.SerializerMethodField()
    wait_reason = serializers.SerializerMethodField()
    cancel_requested = serializers.SerializerMethodField()
    attempt = serializers.IntegerField()
    metrics = serializers.SerializerMethodField(
        help_text="accuracy, macro_f1 and the other summary figures; a list never carries "
        "per_class or confusion_matrix (one job does: GET /v1/training-jobs/{id})"
    )
    confusion_matrix_url = serializers.SerializerMethodField(
        help_text="the full confusion matrix (JSON, or CSV with ?format=csv); null without one"
    )
    model = serializers.SerializerMethodField()
    usage = JobUsageField()
    error = serializers.JSONField()
    retry_of = serializers.CharField(
        source="retry_of_id",
        allow_null=True,
        help_text="the failed or cancelled job this one retries (an operator's retry); else null",
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True, help_text="null until it starts")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="null until it ends")

    def get_object(self, obj) -> str:
        return "training_job"

    def get_metrics(self, obj) -> dict | None:
        summary = getattr(obj, "metrics_summary", None)
        if summary is not None or "metrics" in obj.get_deferred_fields():
            return summary
        if not obj.metrics:  # a row read elsewhere (not annotated): cut it here
            return obj.metrics
        return {k: v for k, v in obj.metrics.items() if k not in ("per_class", "confusion_matrix")}

    def get_confusion_matrix_url(self, obj) -> str | None:
        classes = getattr(obj, "metrics_classes", None)
        if classes is None and "metrics" not in obj.get_deferred_fields():
            classes = len(((obj.metrics or {}).get("confusion_matrix") or {}).get("labels", []))
        return f"/v1/training-jobs/{obj.pk}/confusion-matrix" if classes else None

    def get_progress(self, obj) -> dict:
        return {"epoch": obj.epoch, "epochs": obj.hyperparameters.get("epochs")}

    def _queue(self, obj):
        # The context is the dict the view passed (the stubs type it as a read-only Mapping);
        # the cache lives there for the whole page.
        cache = cast("dict[str, Any]", self.context).setdefault("_queue", {})
        if obj.pk not in cache:
            cache[obj.pk] = job_selectors.training_job_queue_info(job=obj)
        return cache[obj.pk]

    def get_queue_position(self, obj) -> int | None:
        return self._queue(obj)[0]

    def get_wait_reason(self, obj) -> str | None:
        return self._queue(obj)[1]

    def get_cancel_requested(self, obj) -> bool:
        return obj.cancel_requested_at is not None

    def get_model(self, obj) -> str | None:
        return job_selectors.training_job_model_id(job=obj)


class TrainingJobDetailOut(TrainingJobOut):
    """One job: the list's fields, with ``per_class`` in ``metrics``, and ``confusion_matrix``
    when it has at most ``TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES`` classes (otherwise
    only ``confusion_matrix_url`` has it)."""

    metrics = serializers.SerializerMethodField(
        help_text="accuracy, macro_f1, per_class; confusion_matrix when it is small (at most "
        "TRAINYARD_CONFUSION_MATRIX_INLINE_CLASSES classes), else see confusion_matrix_url"
    )

    def get_metrics(self, obj) -> dict | None:
        return metrics_inline(obj.metrics)


class ConfusionMatrixOut(serializers.Serializer):
    object = serializers.CharField(default="confusion_matrix")
    training_job = serializers.CharField()
    labels = serializers.ListField(child=serializers.CharField())
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="rows: true class, columns: predicted class, in the order of labels",
    )


class CSVRenderer(renderers.BaseRenderer):
    """Lets content negotiation pick CSV (``Accept: text/csv`` or ``?format=csv``). The CSV
    itself is streamed by the view; what this renders is only an error's problem details,
    as JSON (the problem response sets its own content type)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return renderers.JSONRenderer().render(data)


class _Echo:
    """A file whose write returns what it was given: csv.writer for a streamed response."""

    def write(self, value: str) -> str:
        return value


def confusion_matrix_csv(labels: list[str], matrix: list[list[int]]) -> Iterator[str]:
    """The matrix as CSV lines: a header ``true \\ predicted,<label>…``, then one row per true
    class, ``<label>,<count>…`` (RFC 4180 quoting for labels with commas or quotes)."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(["true \\ predicted", *labels])
    for label, row in zip(labels, matrix, strict=False):
        yield writer.writerow([label, *row])


class JobEventOut(serializers.Serializer):
    object = serializers.SerializerMethodField()
    type = serializers.CharField()
    message = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this does not shadow .data.
    data = serializers.JSONField()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "training_job.event"


class MisclassifiedOut(serializers.Serializer):
    input = serializers.CharField(help_text="the text, or the image's path inside the uploaded ZIP")
    true_label = serializers.CharField()
    predicted_label = serializers.CharField()
    score = serializers.FloatField(help_text="the model's probability for the predicted label")


class TrainingJobListView(TenantAPIView):
    """Training jobs: list them (``?status=``), or start one on a dataset."""

    actions = {"GET": Action.TRAINING_READ, "POST": Action.TRAINING_WRITE}
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="training_jobs_list",
        responses=page_of(TrainingJobOut),
        parameters=PAGE_PARAMS,
    )
    def get(self, request):
        qs = job_selectors.training_job_list(
            organization_id=self.organization.pk, status=request.query_params.get("status")
        )
        return self.paginate(qs, TrainingJobOut)

    @extend_schema(request=TrainingJobCreateIn, responses={201: TrainingJobOut})
    def post(self, request):
        data = validated(TrainingJobCreateIn, request.data)
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
                    actor=self.actor,
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
        return Response(TrainingJobOut(job).data, status=status.HTTP_201_CREATED)


class TrainingJobDetailView(TenantAPIView):
    """One training job: status, progress, queue position, metrics, model, usage."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=TrainingJobDetailOut)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(TrainingJobDetailOut(job).data)


class TrainingJobConfusionMatrixView(TenantAPIView):
    """The job's whole confusion matrix: JSON, or CSV with ``?format=csv`` or ``Accept:
    text/csv`` (a download). 409 before the job has metrics."""

    actions = {"GET": Action.TRAINING_READ}
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        # An explicit ?format= wins over Accept: a browser following the dashboard's download
        # link asks for text/html first.
        fmt = request.query_params.get("format")
        for renderer in self.get_renderers():
            if fmt == renderer.format:
                return renderer, renderer.media_type
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:  # DRF's answer to an unknown ?format=: a 406 that says what is known
            raise exceptions.NotAcceptable("format must be json or csv.") from None

    @extend_schema(
        operation_id="training_jobs_confusion_matrix",
        parameters=[
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="csv: the matrix as a CSV file"
            )
        ],
        responses={
            (200, "application/json"): ConfusionMatrixOut,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="header `true \\ predicted,<labels>`, then a row per true class",
            ),
        },
    )
    def get(self, request, job_id: str):
        cm = job_selectors.training_job_confusion_matrix(
            organization_id=self.organization.pk, job_id=job_id
        )
        if cm is None:
            raise Conflict("The job has no confusion matrix yet; it has one once it has succeeded.")
        labels, matrix = list(cm.get("labels", [])), list(cm.get("matrix", []))
        if request.accepted_renderer.format == "csv":
            response = StreamingHttpResponse(
                confusion_matrix_csv(labels, matrix), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = (
                f'attachment; filename="{job_id}-confusion-matrix.csv"'
            )
            return response
        return Response(
            {
                "object": "confusion_matrix",
                "training_job": job_id,
                "labels": labels,
                "matrix": matrix,
            }
        )


class TrainingJobCancelView(TenantAPIView):
    """Cancel a queued job now, or stop a running one before its next batch."""

    actions = {"POST": Action.TRAINING_WRITE}

    @extend_schema(request=None, responses=TrainingJobOut)
    def post(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        job_services.training_job_cancel(job=job, actor=self.actor)
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(TrainingJobOut(job).data)


class TrainingJobEventsView(TenantAPIView):
    """The job's timeline, oldest first: created, started, one event per epoch, finished."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=page_of(JobEventOut), parameters=PAGE_PARAMS)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        events = job_selectors.training_job_events(job=job)
        return self.paginate(events, JobEventOut, ordering=("created_at", "pk"))


class TrainingJobMisclassifiedView(TenantAPIView):
    """Validation examples the model got wrong, most confident mistakes first (up to 200 kept)."""

    actions = {"GET": Action.TRAINING_READ}

    @extend_schema(responses=page_of(MisclassifiedOut), parameters=PAGE_PARAMS)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        if job.status != "succeeded":
            raise Conflict(
                f"The job is {job.status}; misclassified examples exist once it has succeeded."
            )
        return paginate_list(request, self, job.misclassified or [])
