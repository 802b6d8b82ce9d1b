"""Training-loop pieces shared by the text and image runners.

Hyperparameter resolution (against the contract's table), seeding, the train/validation split, the progress/cancellation
callback, batched prediction, evaluation and the SavedModel export all live here so that
``text.py`` and ``image.py`` only differ in how they read data and build a model.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras
from sklearn.model_selection import train_test_split

from saas.contract import ContractError, runner_hyperparameters
from saas.contract.spec import (
    EpochCallback,
    StopCheck,
    TrainingCancelled,
    TrainingInputError,
    TrainResult,
    TrainSpec,
)
from workers.ml.evaluation import evaluate

LABELS_FILENAME = "labels.txt"
SERVING_INPUT = "inputs"
SERVING_OUTPUT = "scores"


def resolve_hyperparameters(base_model: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every hyperparameter the runner reads: ``given`` over the contract's defaults.

    Args:
        base_model: ``spec.base_model``; decides which hyperparameters are accepted.
        given: ``TrainSpec.hyperparameters``, checked against
            :data:`saas.contract.hyperparameters.HYPERPARAMETERS` (the API's own table).

    Returns:
        A new dict with every hyperparameter the base model accepts.

    Raises:
        TrainingInputError: a name is unknown for the base model, or a value has the wrong
            type or is out of range; the message names every such hyperparameter.
    """
    try:
        return runner_hyperparameters(base_model, given)
    except ContractError as exc:
        problems = "; ".join(
            f"Hyperparameter {e['field'].removeprefix('hyperparameters.')!r} {e['message']}"
            for e in exc.errors
        )
        raise TrainingInputError(problems or exc.detail) from exc


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow (``keras.utils.set_random_seed``).

    Op determinism (``tf.config.experimental.enable_op_determinism``) is deliberately not
    switched on: it is process-wide and irreversible, and on GPU workers it makes some
    kernels slower or unavailable. On CPU, with a fixed seed, runs are already reproducible
    (tests/workers/ml/test_runner_control.py checks this).
    """
    keras.utils.set_random_seed(int(seed))


def encode_labels(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Index-encode labels.

    Returns:
        ``(classes, y)``: ``classes`` sorted (model output order), ``y`` int32 ``[N]`` with
        ``classes[y[i]] == labels[i]``.

    Raises:
        TrainingInputError: fewer than two distinct labels.
    """
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise TrainingInputError("At least two classes are needed to train a classifier.")
    index = {label: i for i, label in enumerate(classes)}
    return classes, np.fromiter(
        (index[label] for label in labels), dtype=np.int32, count=len(labels)
    )


def stratified_split(
    y: np.ndarray, classes: Sequence[str], *, validation_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/validation split of example indices.

    Args:
        y: int label indices ``[N]``.
        classes: label names, for error messages.
        validation_split: fraction of examples held out, in (0, 0.5].
        seed: ``random_state`` of scikit-learn's ``train_test_split``.

    Returns:
        ``(train_idx, val_idx)``, int arrays; every class occurs in both.

    Raises:
        TrainingInputError: a class has fewer than 2 examples, or the validation split is too
            small to hold one example of every class.
    """
    counts = np.bincount(y, minlength=len(classes))
    too_small = [classes[i] for i, n in enumerate(counts) if n < 2]
    if too_small:
        raise TrainingInputError(
            "Every class needs at least 2 examples (one for training, one for validation); "
            f"too few: {', '.join(too_small[:10])}."
        )
    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(y)), test_size=validation_split, random_state=seed, stratify=y
        )
    except ValueError as exc:
        raise TrainingInputError(
            f"Cannot split the data into training and validation sets: {exc}"
        ) from exc
    if len(np.unique(y[train_idx])) != len(classes):
        raise TrainingInputError(
            "A class has no example left in the training split; add more examples."
        )
    return np.sort(train_idx), np.sort(val_idx)


class ProgressCallback(keras.callbacks.Callback):
    """Reports finished epochs and checks for cancellation before every training batch.

    ``should_stop()`` is called in ``on_train_batch_begin``; when it returns True the callback
    sets ``model.stop_training`` and raises :class:`TrainingCancelled` right there, so the
    pending batch and the epoch's validation pass are not run (Keras would otherwise finish
    the batch and evaluate the whole validation set before honouring ``stop_training``). The
    exception carries ``examples_processed`` and ``epochs_completed`` for metering.

    ``on_epoch(epoch, logs)`` gets the 1-based epoch number and ``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy`` as Python floats; the same figures plus ``epoch`` are
    appended to :attr:`history`. Epochs are counted from the start of the job: when training
    resumes from a checkpoint after epoch k (Keras starts at epoch index k), the first epoch
    reported is k + 1, and :attr:`epochs_completed` includes the k restored ones.

    Args:
        num_train: training examples per epoch, and ``batch_size``: examples per batch (the
            last batch of an epoch may be smaller); both only for ``examples_processed``.
    """

    METRIC_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")

    def __init__(
        self,
        on_epoch: EpochCallback | None = None,
        should_stop: StopCheck | None = None,
        *,
        num_train: int = 0,
        batch_size: int = 1,
    ):
        super().__init__()
        self._on_epoch = on_epoch
        self._should_stop = should_stop
        self._num_train = num_train
        self._batch_size = batch_size
        self._batches_this_epoch = 0
        self.epochs_completed = 0
        self.history: list[dict[str, Any]] = []

    @property
    def examples_processed(self) -> int:
        """Training examples consumed so far: finished epochs (restored ones included) plus
        finished batches of the current one."""
        partial = min(self._batches_this_epoch * self._batch_size, self._num_train)
        return self.epochs_completed * self._num_train + partial

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._batches_this_epoch = 0
        self.epochs_completed = epoch  # 0-based index of this epoch = epochs already done

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._should_stop is not None and self._should_stop():
            self.model.stop_training = True
            cancelled = TrainingCancelled(
                f"Training cancelled during epoch {self.epochs_completed + 1}."
            )
            cancelled.examples_processed = self.examples_processed
            cancelled.epochs_completed = self.epochs_completed
            raise cancelled

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_this_epoch += 1

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        figures = {key: float(logs[key]) for key in self.METRIC_KEYS if key in logs}
        self.history.append({"epoch": epoch + 1, **figures})
        self._batches_this_epoch = 0
        self.epochs_completed = epoch + 1
        if self._on_epoch is not None:
            self._on_epoch(epoch + 1, figures)


def predict_probs(model: keras.Model, features: tf.data.Dataset) -> np.ndarray:
    """Class probabilities for a batched dataset of model inputs.

    Calls ``model(x, training=False)`` once per batch (no per-row ``predict`` loop).

    Returns:
        float32 ``[N, C]``.
    """
    chunks = [model(x, training=False).numpy() for x in features]
    if not chunks:
        return np.zeros((0, model.output_shape[-1]), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


@dataclass
class Split:
    """Batched datasets for one training run.

    Attributes:
        train: ``(x, y)`` batches, shuffled each epoch.
        validation: ``(x, y)`` batches in a fixed order.
        val_y: int label indices ``[num_validation]`` in ``validation`` order.
        val_inputs: what to show for a validation example in ``misclassified`` (the text, or
            the archive member path).
        num_train: training examples.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    val_y: np.ndarray
    val_inputs: list[str]
    num_train: int


def fit_evaluate(
    *,
    model: keras.Model,
    data: Split,
    classes: list[str],
    hp: Mapping[str, Any],
    saved_model_dir: str,
    on_epoch: EpochCallback | None,
    should_stop: StopCheck | None,
    checkpoint_dir: str | None = None,
) -> TrainResult:
    """Compile, train and evaluate ``model``; the caller exports it to ``saved_model_dir``.

    Uses Adam(``hp["learning_rate"]``) and sparse categorical cross-entropy; the model must end
    in a softmax over ``len(classes)`` outputs. With ``hp["lr_schedule"] == "cosine"`` the
    learning rate decays from ``learning_rate`` to 0 over all training steps (cosine), which
    keeps the last epochs (the ones that are exported) stable; default ``"constant"``.

    Returns:
        A :class:`TrainResult` whose metrics and misclassified examples are computed on the
        validation split; ``saved_model_dir`` is recorded as given.

    With ``checkpoint_dir``, a Keras ``BackupAndRestore`` backs up the weights, optimizer state
    and epoch counter there at the end of every epoch, *before* ``on_epoch`` is called (so the
    caller can store the backup of the epoch it is told about), and restores a backup already
    there before training, continuing at the next epoch.

    Raises:
        TrainingCancelled: ``should_stop()`` returned True before a batch; the exception's
            ``examples_processed`` and ``epochs_completed`` say how far training got.
    """
    learning_rate = hp["learning_rate"]
    if hp.get("lr_schedule", "constant") == "cosine":
        steps = int(data.train.cardinality().numpy()) * hp["epochs"]
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(steps, 1)
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    progress = ProgressCallback(
        on_epoch, should_stop, num_train=data.num_train, batch_size=hp["batch_size"]
    )
    callbacks: list[keras.callbacks.Callback] = [progress]
    restoring = bool(
        checkpoint_dir and os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir)
    )
    if checkpoint_dir is not None:
        # First in the list: Keras calls callbacks in order, so the epoch's backup is on disk
        # when progress reports the epoch. Kept after training: the caller owns the directory.
        backup = keras.callbacks.BackupAndRestore(
            checkpoint_dir, save_freq="epoch", delete_checkpoint=False
        )
        callbacks.insert(0, backup)
    model.fit(
        data.train,
        validation_data=data.validation,
        epochs=hp["epochs"],
        callbacks=callbacks,
        verbose=0,
    )
    probs = predict_probs(model, data.validation.map(lambda x, y: x))
    metrics, misclassified = evaluate(data.val_y, probs, classes, data.val_inputs)
    epochs_completed = progress.epochs_completed
    if restoring and not progress.history:
        # Keras ran no epoch: the backup already held the last one (the previous attempt died
        # while evaluating or exporting).
        epochs_completed = hp["epochs"]
    return TrainResult(
        classes=list(classes),
        saved_model_dir=saved_model_dir,
        metrics=metrics,
        misclassified=misclassified,
        history=progress.history,
        epochs_completed=epochs_completed,
        examples_processed=data.num_train * epochs_completed,
        num_train=data.num_train,
        num_validation=len(data.val_y),
    )


def export_saved_model(
    *,
    module: tf.Module,
    serve: Callable[[tf.Tensor], tf.Tensor],
    classes: Sequence[str],
    saved_model_dir: str,
) -> str:
    """Write ``module`` as a SavedModel with a ``serving_default`` signature and labels asset.

    Args:
        module: tracks every variable and resource ``serve`` uses (model variables, the
            vocabulary layer's lookup table); ``labels_file`` and ``serving_default``
            attributes are added to it.
        serve: maps ``tf.string [None]`` (raw texts or encoded image bytes) to softmax
            probabilities ``float32 [None, len(classes)]``.
        classes: label names in model output order; written one a line to
            ``saved_model_dir/assets/labels.txt`` (a tracked ``tf.saved_model.Asset``, so it
            is available as ``loaded.labels_file.asset_path`` after loading too).
        saved_model_dir: destination; created.

    Returns:
        ``saved_model_dir``.
    """

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serving_default(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        return {SERVING_OUTPUT: tf.cast(serve(inputs), tf.float32)}

    with tempfile.TemporaryDirectory() as tmp:
        labels_path = os.path.join(tmp, LABELS_FILENAME)
        with open(labels_path, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(f"{label}\n" for label in classes)
        module.labels_file = tf.saved_model.Asset(labels_path)
        module.serving_default = serving_default
        tf.saved_model.save(
            module, saved_model_dir, signatures={"serving_default": serving_default}
        )
    return saved_model_dir


def saved_model_path(spec: TrainSpec) -> str:
    """Where a runner writes its SavedModel: ``spec.output_dir/saved_model``."""
    return os.path.join(spec.output_dir, "saved_model")


def reject_newlines_in_labels(classes: Sequence[str]) -> None:
    """labels.txt holds one label a line.

    Raises:
        TrainingInputError: a label contains a line break.
    """
    bad = [c for c in classes if "\n" in c or "\r" in c]
    if bad:
        raise TrainingInputError(f"Labels must not contain line breaks: {bad[0]!r}.")


def dataset_from_arrays(
    x: Any,
    y: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    map_fn: Callable | None = None,
    cache: bool = False,
) -> tf.data.Dataset:
    """A batched ``tf.data`` pipeline over in-memory examples.

    Args:
        x: ``[N, ...]`` array-like of inputs (strings or bytes for our runners).
        y: int label indices ``[N]``.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle: reshuffle every epoch (full-dataset buffer, seeded with ``seed``).
        map_fn: per-example ``(x, y) -> (x, y)`` transform, run in parallel before batching
            (order-preserving, so the pipeline stays deterministic).
        cache: keep ``map_fn``'s outputs in memory after the first epoch instead of recomputing
            them every epoch; only for outputs that fit comfortably in memory.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if map_fn is not None and cache:
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if map_fn is not None and not cache:
        # After the shuffle, so that the shuffle buffer holds the small raw inputs.
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
