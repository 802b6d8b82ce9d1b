"""The usage ledger: append-only usage events, each traceable to the job or request it bills."""

from django.db import models

from saas.tenancy.models import TenantModel


class Meter(models.TextChoices):
    """What is billed. Training compute has one meter per device class, since a GPU second
    costs the operator 40× a CPU second (``saas.billing.seed.RATE_CARD``):
    ``training_compute_seconds`` is CPU time, ``training_gpu_seconds`` GPU time."""

    TRAINING_COMPUTE_SECONDS = "training_compute_seconds"
    TRAINING_GPU_SECONDS = "training_gpu_seconds"
    TRAINING_EXAMPLES = "training_examples"
    PREDICTIONS = "predictions"
    BATCH_PREDICTION_ROWS = "batch_prediction_rows"
    STORAGE_GB_HOURS = "storage_gb_hours"


def compute_meter_for(device: str) -> Meter:
    """The meter that bills training compute on ``device`` (``"gpu"`` or anything else, CPU)."""
    return Meter.TRAINING_GPU_SECONDS if device == "gpu" else Meter.TRAINING_COMPUTE_SECONDS


class UsageEvent(TenantModel):
    """One metered quantity. Never edited; a correction is a new (negative) event.

    ``idempotency_key`` is unique per (organisation, meter), derived from the source (``tj_…``
    for a job, ``pred_…`` for a prediction request), so a redelivered completion cannot count
    twice.
    """

    meter = models.CharField(max_length=64, choices=Meter.choices)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=16)
    occurred_at = models.DateTimeField()
    source_type = models.CharField(max_length=32)  # training_job | prediction
    source_id = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=128)
    dimensions = models.JSONField(default=dict, blank=True)  # device, cpu_seconds, reason…
    compute_cost = models.DecimalField(
        max_digits=16, decimal_places=8, default=0
    )  # operator's cost
    reason = models.CharField(max_length=200, blank=True, default="")  # corrections say why
    api_key = models.ForeignKey(
        "apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model = models.ForeignKey(
        "registry.TrainedModel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "meter", "idempotency_key"], name="uniq_usage_idempotency"
            )
        ]
        indexes = [models.Index(fields=["organization", "occurred_at"])]
