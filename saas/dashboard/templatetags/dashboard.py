"""Template filters for the dashboard."""

from django import template

register = template.Library()

METER_LABELS = {
    "training_compute_seconds": "Training compute (seconds)",
    "training_gpu_seconds": "Training GPU compute (seconds)",
    "training_examples": "Training examples processed",
    "predictions": "Predictions",
    "batch_prediction_rows": "Batch prediction rows",
    "storage_gb_hours": "Storage (GB-hours)",
}


@register.filter
def meter_label(meter: str) -> str:
    """``training_compute_seconds`` → ``Training compute (seconds)``; unknown meters unchanged."""
    return METER_LABELS.get(meter, meter)


@register.filter
def words(code: str) -> str:
    """``cancelled_by_user`` → ``cancelled by user`` (machine codes shown to people)."""
    return str(code).replace("_", " ")
