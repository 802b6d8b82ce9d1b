"""ML runners: a :class:`~saas.contract.spec.TrainSpec` in, a ``TrainResult`` out.

Importing this package is cheap: TensorFlow is loaded by :func:`train` on first use (through
``workers.ml.runners.text`` / ``workers.ml.runners.image``), after ``workers.ml.tf_env`` has set the
environment TensorFlow reads at import time.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (must run before any TensorFlow import)
from saas.contract.spec import (
    IMAGE,
    TEXT,
    EpochCallback,
    StopCheck,
    TrainingCancelled,
    TrainingInputError,
    TrainResult,
    TrainSpec,
)

__all__ = [
    "IMAGE",
    "TEXT",
    "TrainResult",
    "TrainSpec",
    "TrainingCancelled",
    "TrainingInputError",
    "train",
]


def train(
    spec: TrainSpec, *, on_epoch: EpochCallback | None = None, should_stop: StopCheck | None = None
) -> TrainResult:
    """Train, evaluate and export the model ``spec`` describes.

    Dispatches on ``spec.task``: ``TEXT`` → :func:`workers.ml.runners.text.train` (base model
    ``"text-embedding-bag"``); ``IMAGE`` → :func:`workers.ml.runners.image.train` (``"cnn-small"``,
    or a TF Hub model given by ``spec.handle``).

    Args:
        spec: what to train; ``spec.output_dir`` must exist and be empty.
        on_epoch: ``on_epoch(epoch, {"loss", "accuracy", "val_loss", "val_accuracy"})`` after
            each finished epoch, epoch counted from 1, figures as floats.
        should_stop: polled before every training batch; returning True cancels the run.

    Returns:
        The :class:`TrainResult`; the SavedModel is at ``result.saved_model_dir``.

    Raises:
        TrainingInputError: the data or hyperparameters cannot be trained on (user-facing).
        TrainingCancelled: ``should_stop()`` returned True; no model is exported.
        ValueError: unknown task or base model (a platform bug, not the user's).
    """
    if spec.task == TEXT:
        # TensorFlow: the runner modules import it at module level, so they are imported here,
        # in the worker's pool child on its first job, never by the web tier or at fork time.
        from workers.ml.runners import text

        if spec.base_model != text.BASE_MODEL:
            raise ValueError(f"Unknown text base model {spec.base_model!r}.")
        return text.train(spec, on_epoch=on_epoch, should_stop=should_stop)
    if spec.task == IMAGE:
        # TensorFlow, as above.
        from workers.ml.runners import image

        return image.train(spec, on_epoch=on_epoch, should_stop=should_stop)
    raise ValueError(f"Unknown task {spec.task!r}.")
