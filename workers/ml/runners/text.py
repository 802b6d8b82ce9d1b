"""Text classification: a bag-of-embeddings model over a learned vocabulary.

``TextVectorization`` (adapted on the training split only) → ``Embedding`` →
``GlobalAveragePooling1D`` → ``Dropout`` → ``Dense(C, softmax)``. The exported SavedModel
takes raw strings; lower-casing, punctuation stripping and tokenisation happen inside it.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from saas.contract import TEXT_EMBEDDING_BAG, ContractError
from saas.contract.datasets import MissingColumns, parse_text_csv, row_problems_summary
from saas.contract.hyperparameters import HYPERPARAMETERS
from saas.contract.spec import (
    EpochCallback,
    StopCheck,
    TrainingInputError,
    TrainResult,
    TrainSpec,
)
from workers.ml import splits
from workers.ml.runners.common import (
    Split,
    dataset_from_arrays,
    encode_labels,
    export_saved_model,
    fit_evaluate,
    reject_newlines_in_labels,
    resolve_hyperparameters,
    saved_model_path,
    seed_everything,
)

BASE_MODEL = TEXT_EMBEDDING_BAG

# The contract's defaults for this base model (what bench/train_defaults.py prints).
DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    name: h.defaults["text"] for name, h in HYPERPARAMETERS.items() if "text" in h.defaults
}


def read_csv(
    path: str, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], list[str]]:
    """Read a labelled text CSV with the contract's parser (the one upload validation uses).

    See :mod:`saas.contract.datasets` for the rules (BOM, stripped header names and labels,
    blank rows skipped, texts kept as written).

    Returns:
        ``(texts, labels)``, two equally long lists.

    Raises:
        TrainingInputError: not UTF-8, a column is missing, a row is unusable (wrong number of
            fields, empty text or label, a label with a line break, malformed CSV), or the file
            has no rows.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        parsed = parse_text_csv(data, text_column=text_column, label_column=label_column)
    except MissingColumns as exc:
        raise TrainingInputError(
            f"The CSV has no column named {', '.join(map(repr, exc.missing))}."
        ) from exc
    except ContractError as exc:
        raise TrainingInputError(exc.detail) from exc
    if parsed.problems:
        raise TrainingInputError(row_problems_summary(parsed))
    if not parsed.examples:
        raise TrainingInputError("The CSV has no data rows.")
    return [e.text for e in parsed.examples], [e.label for e in parsed.examples]


def build_model(train_texts: np.ndarray, num_classes: int, hp: dict[str, Any]) -> keras.Model:
    """Build the text model; its vocabulary is adapted on ``train_texts`` only.

    Args:
        train_texts: object array of ``str`` ``[N_train]``.
        num_classes: ``C``.
        hp: resolved hyperparameters (``max_tokens``, ``sequence_length``, ``embedding_dim``,
            ``dropout``).

    Returns:
        A Keras model mapping ``tf.string [batch]`` to softmax probabilities ``[batch, C]``.
    """
    vectorize = keras.layers.TextVectorization(
        max_tokens=hp["max_tokens"],
        output_mode="int",
        output_sequence_length=hp["sequence_length"],
        name="vectorize",
    )
    vectorize.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(1024))
    inputs = keras.Input(shape=(), dtype=tf.string, name="text")
    x = vectorize(inputs)
    # No mask_zero: a masked average of an empty (all-padding) text is 0/0 = NaN; the padding
    # embedding is learned instead.
    x = keras.layers.Embedding(
        vectorize.vocabulary_size(), hp["embedding_dim"], mask_zero=False, name="embedding"
    )(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(hp["dropout"], name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="text_embedding_bag")


def train(
    spec: TrainSpec, *, on_epoch: EpochCallback | None = None, should_stop: StopCheck | None = None
) -> TrainResult:
    """Train, evaluate and export a text classifier (see the module docstring).

    Args:
        spec: ``spec.dataset_path`` is a CSV with ``spec.text_column``/``spec.label_column``;
            hyperparameters default to :data:`DEFAULT_HYPERPARAMETERS` (the contract's).
        on_epoch: called after every epoch with (epoch from 1, metrics).
        should_stop: called before every training batch; True cancels.

    Returns:
        The :class:`TrainResult`; the SavedModel is in ``spec.output_dir/saved_model``.

    Raises:
        TrainingInputError: unreadable CSV, invalid hyperparameters, or classes too small
            to split.
        TrainingCancelled: ``should_stop()`` returned True; nothing is exported.
    """
    hp = resolve_hyperparameters(BASE_MODEL, spec.hyperparameters)
    texts, labels = read_csv(spec.dataset_path, spec.text_column, spec.label_column)
    classes, y = encode_labels(labels)
    reject_newlines_in_labels(classes)
    # Copies of one text (after normalising whitespace and case) stay on one side.
    groups = splits.group_ids(splits.text_keys(texts))
    train_idx, val_idx = splits.grouped_stratified_split(
        y, groups, classes, validation_split=hp["validation_split"], seed=spec.seed
    )
    x = np.array(texts, dtype=object)

    seed_everything(spec.seed)
    model = build_model(x[train_idx], len(classes), hp)
    data = Split(
        train=dataset_from_arrays(
            x[train_idx], y[train_idx], batch_size=hp["batch_size"], shuffle=True, seed=spec.seed
        ),
        validation=dataset_from_arrays(
            x[val_idx], y[val_idx], batch_size=hp["batch_size"], shuffle=False, seed=spec.seed
        ),
        val_y=y[val_idx],
        val_inputs=[texts[i] for i in val_idx],
        num_train=len(train_idx),
    )
    out_dir = saved_model_path(spec)
    result = fit_evaluate(
        model=model,
        data=data,
        classes=classes,
        hp=hp,
        saved_model_dir=out_dir,
        on_epoch=on_epoch,
        should_stop=should_stop,
        checkpoint_dir=spec.checkpoint_dir,
    )
    splits.annotate_duplicates(result.metrics, groups)
    # Track the variables and the vocabulary layer (it owns the lookup table), not the whole
    # Keras model: saving the model would add Keras's own serialisation (extra traces).
    module = tf.Module()
    module.model_variables = list(model.variables)
    module.vectorize = model.get_layer("vectorize")
    export_saved_model(
        module=module,
        serve=lambda inputs: model(inputs, training=False),
        classes=classes,
        saved_model_dir=out_dir,
    )
    return result
