"""Hyperparameters: what each base model accepts, its defaults, and the accepted ranges.

One table (:data:`HYPERPARAMETERS`) serves the API (validation and the schema's help text), the
dashboard form and the runners, so what the API accepts is exactly what the runners read. The
defaults are the ones the README's accuracy figures were measured with
(``bench/train_defaults.py``).

A job records the *stored* hyperparameters: the core ones (epochs, batch size, learning rate,
validation split; ``fine_tune`` for hub models) with their defaults filled in, plus any other
one the caller set. :func:`runner_hyperparameters` adds the remaining defaults when the job runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from saas.contract.catalogue import (
    CNN_SMALL,
    TEXT_EMBEDDING_BAG,
    Family,
    base_models_for,
    default_base_model,
    family,
)
from saas.contract.errors import ContractError

FINE_TUNE_LEARNING_RATE: Final = 1e-4  # a pretrained backbone needs small steps
LR_SCHEDULES: Final[tuple[str, ...]] = ("constant", "cosine")


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: its type, inclusive bounds or choices, and per-family defaults.

    Attributes:
        name: the key in ``hyperparameters``.
        type: ``int``, ``float``, ``bool`` or ``str`` (then ``choices`` lists the values).
        minimum, maximum: inclusive bounds for numbers; None for bools and choices.
        choices: the accepted strings for ``str`` hyperparameters.
        defaults: ``{family: default}`` for the families (``text``, ``cnn``, ``hub``) that
            accept it; a default of None means "decided by the runner" (a hub module's own
            input size).
        core: stored with its default on every job of those families (the API's historic four,
            plus ``fine_tune``); the others are stored only when set.
        help: one line for forms and the API schema.
    """

    name: str
    type: type
    defaults: Mapping[str, Any]
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    core: bool = False

    def describe(self) -> str:
        """The accepted values in words, e.g. ``"integer, 1–200"`` or ``"one of: a, b"``."""
        if self.type is bool:
            return "true or false"
        if self.choices:
            return f"one of: {', '.join(self.choices)}"
        kind = "integer" if self.type is int else "number"
        return f"{kind}, {_fmt(self.minimum)}–{_fmt(self.maximum)}"

    def help_text(self) -> str:
        """``help`` plus the accepted values and the defaults per base model."""
        shown = {
            _FAMILY_LABEL[f]: v for f, v in self.defaults.items() if v is not None
        }  # e.g. {"text-embedding-bag": 10, "cnn-small": 30, "hub models": 5}
        defaults = "; ".join(f"{k} {_fmt(v)}" for k, v in shown.items())
        return f"{self.help} ({self.describe()}; default: {defaults or 'from the model'})"

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(coerced value, None)``, or ``(None, message)`` when ``value`` is not accepted.

        JSON numbers are accepted for ``int`` when they are whole (``3.0``); bools are never
        numbers; strings are never coerced.
        """
        if self.type is bool:
            return (value, None) if isinstance(value, bool) else (None, "must be true or false")
        if self.choices:
            if value in self.choices:
                return value, None
            return None, f"must be one of: {', '.join(self.choices)}; got {value!r}"
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or value != value  # NaN
            or (self.type is int and isinstance(value, float) and not value.is_integer())
        ):
            return None, f"must be a{'n integer' if self.type is int else ' number'}"
        assert self.minimum is not None and self.maximum is not None
        # Compare before converting: int(1e300) is fine but float(10**400) overflows.
        if not self.minimum <= value <= self.maximum:
            return None, (
                f"must be between {_fmt(self.minimum)} and {_fmt(self.maximum)}; got {value}"
            )
        coerced = self.type(value)
        if not self.minimum <= coerced <= self.maximum:
            return None, (
                f"must be between {_fmt(self.minimum)} and {_fmt(self.maximum)}; got {coerced}"
            )
        return coerced, None


_FAMILY_LABEL: Final = {"text": TEXT_EMBEDDING_BAG, "cnn": CNN_SMALL, "hub": "hub models"}
_ALL = ("text", "cnn", "hub")


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def _same(value: Any, families: tuple[str, ...] = _ALL) -> dict[str, Any]:
    return dict.fromkeys(families, value)


HYPERPARAMETERS: Final[dict[str, Hyperparameter]] = {
    h.name: h
    for h in (
        Hyperparameter(
            "epochs",
            int,
            {"text": 10, "cnn": 30, "hub": 5},
            "Passes over the training split. More can fit better, and costs more",
            minimum=1,
            maximum=200,
            core=True,
        ),
        Hyperparameter(
            "batch_size",
            int,
            _same(32),
            "Examples per gradient step",
            minimum=1,
            maximum=1024,
            core=True,
        ),
        Hyperparameter(
            "learning_rate",
            float,
            {"text": 0.005, "cnn": 0.003, "hub": 0.001},
            f"Adam step size (hub models with fine_tune: {FINE_TUNE_LEARNING_RATE} by default)",
            minimum=1e-6,
            maximum=1.0,
            core=True,
        ),
        Hyperparameter(
            "validation_split",
            float,
            _same(0.2),
            "Share of examples held out (stratified) for the metrics",
            minimum=0.05,
            maximum=0.5,
            core=True,
        ),
        Hyperparameter(
            "fine_tune",
            bool,
            {"hub": False},
            "TF Hub models only: train the backbone's weights too (slower; lower default "
            "learning rate)",
            core=True,
        ),
        Hyperparameter(
            "lr_schedule",
            str,
            {"text": "constant", "cnn": "cosine", "hub": "constant"},
            "Learning-rate schedule: constant, or a cosine decay to 0 over all steps",
            choices=LR_SCHEDULES,
        ),
        Hyperparameter(
            "dropout",
            float,
            {"text": 0.5, "cnn": 0.3, "hub": 0.2},
            "Dropout rate before the classification layer",
            minimum=0.0,
            maximum=0.9,
        ),
        Hyperparameter(
            "max_tokens",
            int,
            {"text": 20000},
            "Text only: vocabulary size, padding and the unknown word included",
            minimum=3,
            maximum=200_000,
        ),
        Hyperparameter(
            "sequence_length",
            int,
            {"text": 64},
            "Text only: tokens kept per text (longer texts are cut)",
            minimum=1,
            maximum=2048,
        ),
        Hyperparameter(
            "embedding_dim",
            int,
            {"text": 32},
            "Text only: size of each word's embedding",
            minimum=1,
            maximum=1024,
        ),
        Hyperparameter(
            "image_size",
            int,
            {"cnn": 32, "hub": None},
            "Images only: side in pixels images are resized to (hub models with a fixed "
            "input size accept only that size)",
            minimum=8,
            maximum=512,
        ),
    )
}


def accepted(fam: Family | str) -> dict[str, Hyperparameter]:
    """The hyperparameters a family (``text``, ``cnn``, ``hub``) accepts, by name."""
    return {n: h for n, h in HYPERPARAMETERS.items() if fam in h.defaults}


def stored_defaults(fam: Family | str) -> dict[str, Any]:
    """The core defaults a job of family ``fam`` records when the caller sets nothing."""
    return {n: h.defaults[fam] for n, h in accepted(fam).items() if h.core}


# The dashboard's table of defaults, keyed like the catalogue ("hub" for every hub model).
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    TEXT_EMBEDDING_BAG: stored_defaults("text"),
    CNN_SMALL: stored_defaults("cnn"),
    "hub": stored_defaults("hub"),
}


def check_hyperparameters(base_model: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``given`` for ``base_model`` and return the coerced values (no defaults added).

    Raises:
        ContractError: ``given`` is not a mapping, or with one ``{"field":
            "hyperparameters.<name>", "message"}`` per unknown name, wrong type or value out
            of range (all listed at once).
    """
    if not given:
        return {}  # None, or an empty JSON value: nothing set
    if not isinstance(given, Mapping):
        raise ContractError(
            "hyperparameters must be an object.",
            errors=[{"field": "hyperparameters", "message": "must be a JSON object"}],
        )
    known = accepted(family(base_model))
    out: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name, value in given.items():
        field = f"hyperparameters.{name}"
        spec = known.get(name)
        if spec is None:
            errors.append(
                {
                    "field": field,
                    "message": f"unknown for {base_model}; known: {', '.join(sorted(known))}",
                }
            )
            continue
        coerced, problem = spec.check(value)
        if problem:
            errors.append({"field": field, "message": problem})
        else:
            out[name] = coerced
    if errors:
        raise ContractError("Some hyperparameters are invalid.", errors=errors)
    return out


def resolve(
    *,
    task: str,
    base_model: str | None,
    hyperparameters: Mapping[str, Any] | None,
    hub_models: Any = (),
) -> tuple[str, dict[str, Any]]:
    """What a new job records: ``(base_model, stored hyperparameters)``.

    Args:
        task: the dataset's task.
        base_model: None for the task's default.
        hyperparameters: the caller's values (JSON-decoded).
        hub_models: names of the deployment's TF Hub models (``TRAINYARD_HUB_HANDLES``).

    Returns:
        The base model and the core defaults (:func:`stored_defaults`) updated with the given
        values; for a hub model with ``fine_tune`` and no ``learning_rate`` given, the learning
        rate is :data:`FINE_TUNE_LEARNING_RATE`.

    Raises:
        ContractError: unknown base model for the task (field ``base_model``), or every bad
            hyperparameter (see :func:`check_hyperparameters`).
    """
    base_model = base_model or default_base_model(task)
    allowed = base_models_for(task, hub_models)
    if base_model not in allowed:
        raise ContractError(
            f"Unknown base model {base_model!r} for {task}.",
            errors=[{"field": "base_model", "message": f"must be one of: {', '.join(allowed)}"}],
        )
    given = check_hyperparameters(base_model, hyperparameters)
    out = {**stored_defaults(family(base_model)), **given}
    if out.get("fine_tune") and "learning_rate" not in given:
        out["learning_rate"] = FINE_TUNE_LEARNING_RATE
    return base_model, out


def runner_hyperparameters(base_model: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every hyperparameter a runner reads for ``base_model``: ``given`` over all defaults.

    ``given`` is usually a job's stored hyperparameters (already valid); it is checked again
    because a runner can be called directly. ``image_size`` may be None for hub models (the
    runner reads it from the module).

    Raises:
        ContractError: as :func:`check_hyperparameters`.
    """
    checked = check_hyperparameters(base_model, given)
    fam = family(base_model)
    out = {n: h.defaults[fam] for n, h in accepted(fam).items()}
    out.update(checked)
    if fam == "hub" and out["fine_tune"] and "learning_rate" not in checked:
        out["learning_rate"] = FINE_TUNE_LEARNING_RATE
    return out
