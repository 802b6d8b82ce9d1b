"""Base models, their default hyperparameters and the accepted ranges.

The defaults are the ones the README's accuracy figures were measured with
(``bench/train_defaults.py``).
"""

from __future__ import annotations

from django.conf import settings

from saas.common.errors import ValidationFailed
from saas.datasets.models import Task

TEXT_DEFAULT = "text-embedding-bag"
CNN_SMALL = "cnn-small"

DEFAULTS: dict[str, dict] = {
    TEXT_DEFAULT: {"epochs": 10, "batch_size": 32, "learning_rate": 0.005, "validation_split": 0.2},
    CNN_SMALL: {"epochs": 30, "batch_size": 32, "learning_rate": 0.003, "validation_split": 0.2},
    "hub": {
        "epochs": 5,
        "batch_size": 32,
        "learning_rate": 0.001,
        "validation_split": 0.2,
        "fine_tune": False,
    },
}

FINE_TUNE_LEARNING_RATE = 1e-4

# name: (type, min, max) — inclusive bounds; bools have no bounds.
RANGES: dict[str, tuple[type, float | None, float | None]] = {
    "epochs": (int, 1, 200),
    "batch_size": (int, 1, 1024),
    "learning_rate": (float, 1e-6, 1.0),
    "validation_split": (float, 0.05, 0.5),
    "fine_tune": (bool, None, None),
}


def base_models_for(task: str) -> list[str]:
    """Base models valid for ``task``: text has one; images have cnn-small and the hub catalogue."""
    if task == Task.TEXT_CLASSIFICATION:
        return [TEXT_DEFAULT]
    return [CNN_SMALL, *sorted(settings.TRAINYARD_HUB_HANDLES)]


def default_base_model(task: str) -> str:
    return TEXT_DEFAULT if task == Task.TEXT_CLASSIFICATION else CNN_SMALL


def resolve(*, task: str, base_model: str | None, hyperparameters: dict | None) -> tuple[str, dict]:
    """Return ``(base_model, full hyperparameters)`` with defaults filled in.

    Raises ValidationFailed listing every bad field: unknown base model for the task, unknown
    hyperparameter, wrong type, out of range.
    """
    errors: list[dict] = []
    base_model = base_model or default_base_model(task)
    allowed = base_models_for(task)
    if base_model not in allowed:
        raise ValidationFailed(
            f"Unknown base model {base_model!r} for {task}.",
            errors=[{"field": "base_model", "message": f"must be one of: {', '.join(allowed)}"}],
        )
    defaults = DEFAULTS.get(base_model, DEFAULTS["hub"])
    given = hyperparameters or {}
    if not isinstance(given, dict):
        raise ValidationFailed(
            "hyperparameters must be an object.",
            errors=[{"field": "hyperparameters", "message": "must be a JSON object"}],
        )
    out = dict(defaults)
    for name, value in given.items():
        field = f"hyperparameters.{name}"
        if name not in defaults:
            errors.append(
                {
                    "field": field,
                    "message": f"unknown for {base_model}; known: {', '.join(sorted(defaults))}",
                }
            )
            continue
        typ, lo, hi = RANGES[name]
        if typ is bool:
            if not isinstance(value, bool):
                errors.append({"field": field, "message": "must be true or false"})
                continue
        elif (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (typ is int and not float(value).is_integer())
        ):
            errors.append(
                {"field": field, "message": f"must be a{'n integer' if typ is int else ' number'}"}
            )
            continue
        else:
            value = typ(value)
            if value < lo or value > hi:
                errors.append(
                    {"field": field, "message": f"must be between {lo} and {hi}; got {value}"}
                )
                continue
        out[name] = value
    if errors:
        raise ValidationFailed("Some hyperparameters are invalid.", errors=errors)
    if out.get("fine_tune") and "learning_rate" not in given:
        out["learning_rate"] = FINE_TUNE_LEARNING_RATE  # a pretrained backbone needs small steps
    return base_model, out
