"""Input and output shapes of /v1 (separate serializers; outputs never accept writes)."""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from saas.contract import HYPERPARAMETERS, TASKS, Hyperparameter
from saas.jobs.selectors import training_job_model_id, training_job_queue_info
from saas.jobs.usage import JobUsage


class DatasetCreateIn(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    task = serializers.ChoiceField(choices=list(TASKS))
    name = serializers.CharField(max_length=200, required=False)
    text_column = serializers.CharField(max_length=200, required=False, default="text")
    label_column = serializers.CharField(max_length=200, required=False, default="label")


class DatasetOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    task = serializers.CharField()
    status = serializers.CharField()
    num_examples = serializers.IntegerField()
    classes = serializers.DictField(child=serializers.IntegerField())
    report = serializers.JSONField()
    size_bytes = serializers.IntegerField()
    sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "dataset"


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
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "training_job"

    def get_progress(self, obj) -> dict:
        return {"epoch": obj.epoch, "epochs": obj.hyperparameters.get("epochs")}

    def _queue(self, obj):
        # The context is the dict the view passed (the stubs type it as a read-only Mapping);
        # the cache lives there for the whole page.
        cache = cast("dict[str, Any]", self.context).setdefault("_queue", {})
        if obj.pk not in cache:
            cache[obj.pk] = training_job_queue_info(job=obj)
        return cache[obj.pk]

    def get_queue_position(self, obj) -> int | None:
        return self._queue(obj)[0]

    def get_wait_reason(self, obj) -> str | None:
        return self._queue(obj)[1]

    def get_cancel_requested(self, obj) -> bool:
        return obj.cancel_requested_at is not None

    def get_model(self, obj) -> str | None:
        return training_job_model_id(job=obj)


class JobEventOut(serializers.Serializer):
    object = serializers.SerializerMethodField()
    type = serializers.CharField()
    message = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this does not shadow .data.
    data = serializers.JSONField()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()

    def get_object(self, obj) -> str:
        return "training_job.event"


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


class MisclassifiedOut(serializers.Serializer):
    input = serializers.CharField(help_text="the text, or the image's path inside the uploaded ZIP")
    true_label = serializers.CharField()
    predicted_label = serializers.CharField()
    score = serializers.FloatField(help_text="the model's probability for the predicted label")
