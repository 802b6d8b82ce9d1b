"""Input and output shapes of /v1 (separate serializers; outputs never accept writes)."""

from __future__ import annotations

from rest_framework import serializers

from saas.datasets.models import Task
from saas.jobs.selectors import training_job_model_id, training_job_queue_info
from saas.jobs.usage import JobUsage


class DatasetCreateIn(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True)
    task = serializers.ChoiceField(choices=Task.values)
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


class HyperparametersIn(serializers.Serializer):
    """Documented for the schema; the values are checked by ``saas.jobs.hyperparameters``."""

    epochs = serializers.IntegerField(required=False, help_text="1–200")
    batch_size = serializers.IntegerField(required=False, help_text="1–1024")
    learning_rate = serializers.FloatField(required=False, help_text="1e-6–1")
    validation_split = serializers.FloatField(required=False, help_text="0.05–0.5")
    fine_tune = serializers.BooleanField(
        required=False, help_text="hub models: train the backbone too"
    )


class TrainingJobCreateIn(serializers.Serializer):
    dataset = serializers.CharField(max_length=64)
    base_model = serializers.CharField(max_length=64, required=False, allow_null=True)
    hyperparameters = serializers.JSONField(required=False, default=dict)
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)
    device = serializers.ChoiceField(choices=["cpu", "gpu"], required=False, default="cpu")
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="estimate seconds and price without creating a job"
    )


class JobUsageField(serializers.JSONField):
    """A job's stored ``usage`` written out through :class:`~saas.jobs.usage.JobUsage` (the one
    definition of its shape); the same JSON schema as before (any object)."""

    def to_representation(self, value) -> dict:
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
        cache = self.context.setdefault("_queue", {})
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
    data = serializers.JSONField()
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
    label = serializers.CharField()
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
