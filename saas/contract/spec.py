"""The contract between Celery tasks and the ML runners (``workers.ml.runners``).

Runners are pure: a :class:`TrainSpec` in, a :class:`TrainResult` out; no ORM, no Django.
Everything a runner needs from the platform (progress reporting, cancellation) arrives as
plain callables so the task that glues them to the database stays a few lines long.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from saas.contract.tasks import IMAGE, TEXT

__all__ = [
    "IMAGE",
    "TEXT",
    "EpochCallback",
    "StopCheck",
    "TrainResult",
    "TrainSpec",
    "TrainingCancelled",
    "TrainingInputError",
]


class TrainingCancelled(Exception):
    """Raised by a runner when ``should_stop()`` returned True between two batches.

    The runner sets how far it got: ``examples_processed`` (training examples seen, counting
    repeats across epochs) and ``epochs_completed``; both 0 unless set.
    """

    examples_processed: int = 0
    epochs_completed: int = 0


class TrainingInputError(Exception):
    """The data cannot be trained on (e.g. a class vanished from the training split).

    The message is shown to the user; the job ends ``failed`` with ``billing_reason`` input.
    """


@dataclass(frozen=True)
class TrainSpec:
    """What to train.

    Attributes:
        task: ``TEXT`` or ``IMAGE``.
        dataset_path: local path to the validated upload: a UTF-8 CSV (text; a BOM may be
            present) or a ZIP with one folder per class (image).
        output_dir: an empty local directory; the runner writes the SavedModel to
            ``output_dir/saved_model``.
        base_model: ``"text-embedding-bag"`` (text), ``"cnn-small"`` or a TF Hub catalogue name
            such as ``"mobilenet_v2"`` (image).
        handle: for hub models, the resolved handle (URL or local path); else None.
        hyperparameters: names and values from
            :data:`saas.contract.hyperparameters.HYPERPARAMETERS` accepted for ``base_model``
            (the API checked them with the same table); missing ones take the base model's
            defaults (:func:`saas.contract.hyperparameters.runner_hyperparameters`).
        seed: seeds Python, NumPy and TensorFlow and the train/validation split.
        text_column, label_column: CSV column names (text datasets).
        checkpoint_dir: a local directory for per-epoch training checkpoints (weights,
            optimizer state, epoch), or None for none. If it already holds one, training
            resumes after that checkpoint's epoch.
    """

    task: str
    dataset_path: str
    output_dir: str
    base_model: str
    hyperparameters: dict[str, Any]
    seed: int = 0
    handle: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    checkpoint_dir: str | None = None


@dataclass
class TrainResult:
    """What a runner produced.

    Attributes:
        classes: label names in model output order (sorted).
        saved_model_dir: path of the exported SavedModel. Its ``serving_default`` signature
            takes ``inputs``: ``tf.string`` of shape ``[None]`` (raw texts, or encoded
            JPEG/PNG bytes) and returns ``scores``: ``float32 [None, len(classes)]``
            (softmax probabilities). ``assets/labels.txt`` holds the classes, one a line.
        metrics: ``{"accuracy", "macro_f1", "per_class": {label: {"precision", "recall",
            "f1", "support"}}, "confusion_matrix": {"labels", "matrix"}}`` on the validation split.
        misclassified: validation mistakes, most confident first: ``{"input", "true_label",
            "predicted_label", "score"}``; ``input`` is the text or the archive member path.
        history: one dict per finished epoch: ``{"epoch", "loss", "accuracy", "val_loss",
            "val_accuracy"}``.
        epochs_completed: number of finished epochs (through a resumed checkpoint, the
            epochs of the earlier attempts count too).
        examples_processed: training examples of all epochs (train size × epochs), each
            epoch counted once however many attempts it took.
        num_train, num_validation: split sizes.
    """

    classes: list[str]
    saved_model_dir: str
    metrics: dict[str, Any]
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs_completed: int = 0
    examples_processed: int = 0
    num_train: int = 0
    num_validation: int = 0


# on_epoch(epoch_number_starting_at_1, {"loss", "accuracy", "val_loss", "val_accuracy"})
EpochCallback = Callable[[int, dict[str, float]], None]
# should_stop() -> True when the job was cancelled; called before every training batch.
StopCheck = Callable[[], bool]
