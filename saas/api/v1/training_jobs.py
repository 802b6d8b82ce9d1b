"""/v1/training-jobs: start (or estimate) a job, list and read jobs, cancel, the timeline, the
misclassified validation examples."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from saas.common.errors import Conflict, ValidationFailed
from saas.contract import HYPERPARAMETERS, Hyperparameter
from saas.datasets import selectors as dataset_selectors
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.jobs.usage import JobUsage
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of, paginate_list
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
    metrics = serializers.JSONField()
    model = serializers.SerializerMethodField()
    usage = JobUsageField()
    error = serializers.JSONField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True, help_text="null until it starts")
    finished_at = serializers.DateTimeField(allow_null=True, help_text="null until it ends")

    def get_object(self, obj) -> str:
        return "training_job"

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

    @extend_schema(responses=TrainingJobOut)
    def get(self, request, job_id: str):
        job = job_selectors.training_job_get(organization_id=self.organization.pk, job_id=job_id)
        return Response(TrainingJobOut(job).data)


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
