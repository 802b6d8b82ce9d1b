"""Image classification: a small CNN from scratch, or a TF Hub feature extractor plus a head.

Data is a ZIP with one folder per class, read by the contract's rules
(:mod:`saas.contract.datasets`, the ones upload validation uses). Images stay encoded bytes until
the ``tf.data`` pipeline decodes them with :func:`preprocess_image`, the same function the
exported ``serving_default`` signature uses, so training and serving see identical pixels.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

import posixpath
import zipfile
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras

from saas.contract import CNN_SMALL, IMAGE_EXTENSIONS
from saas.contract.datasets import image_members, is_image_name
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

DEFAULT_HUB_IMAGE_SIZE = 224
# Decoded training images are cached in memory when they take less than this; otherwise they
# are decoded again every epoch.
CACHE_LIMIT_BYTES = 256 * 1024 * 1024

# The contract's defaults (what bench/train_defaults.py prints). For hub models the learning
# rate is 1e-3, or 1e-4 when fine-tuning, and image_size None means "the module's own size".
CNN_DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    name: h.defaults["cnn"] for name, h in HYPERPARAMETERS.items() if "cnn" in h.defaults
}
HUB_DEFAULT_HYPERPARAMETERS: dict[str, Any] = {
    name: h.defaults["hub"] for name, h in HYPERPARAMETERS.items() if "hub" in h.defaults
}


def read_zip(path: str) -> tuple[list[str], list[bytes], list[str]]:
    """Read a class-per-folder image archive with the contract's member rules.

    An image's class is the name of the folder directly containing it (empty path segments
    dropped: ``a//1.png`` is in class ``a``). Directories, ``__MACOSX/``, hidden files or
    folders and files whose names do not end in one of
    :data:`saas.contract.IMAGE_EXTENSIONS` are skipped (upload validation refuses the latter,
    so a validated archive has none). One top-level folder wrapping all the class folders
    (``digits/0/a.png``) is allowed.

    Returns:
        ``(members, images, labels)``: archive member paths, their encoded bytes and class
        names, sorted by member path.

    Raises:
        TrainingInputError: not a ZIP, no images, or an image not inside a class folder.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TrainingInputError("The dataset is not a readable ZIP archive.") from exc
    with archive:
        found = list(image_members([info.filename for info in archive.infolist()]))
        outside = [m for m in found if isinstance(m, str) and is_image_name(m)]
        if outside:
            raise TrainingInputError(f"{outside[0]!r} is not inside a class folder.")
        members = sorted((m for m in found if not isinstance(m, str)), key=lambda m: m.name)
        if not members:
            raise TrainingInputError(
                f"The archive contains no images ({', '.join(IMAGE_EXTENSIONS)})."
            )
        images = [archive.read(m.name) for m in members]
    return [m.name for m in members], images, [m.label for m in members]


def preprocess_image(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """Decode one image and prepare it for the model; used by training and serving alike.

    Args:
        encoded: scalar ``tf.string``, PNG/JPEG/GIF/BMP bytes (the first frame of a GIF).
        image_size: output height and width in pixels.

    Returns:
        float32 ``[image_size, image_size, 3]`` in [0, 1] (greyscale is repeated to RGB, alpha
        dropped; bilinear resize without preserving the aspect ratio).

    Raises:
        tf.errors.InvalidArgumentError: (at run time) the bytes are not a decodable image.
    """
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False, dtype=tf.float32)
    image = tf.image.resize(image, (image_size, image_size), method="bilinear")
    return tf.clip_by_value(image, 0.0, 1.0)


def find_undecodable(images: list[bytes]) -> list[int]:
    """Indices of the images TensorFlow cannot decode (decoded in parallel, once)."""
    indices = tf.data.Dataset.from_tensor_slices(
        (np.arange(len(images)), np.array(images, dtype=object))
    )
    decoded = indices.map(
        lambda i, b: (i, tf.shape(tf.io.decode_image(b, channels=3, expand_animations=False))),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).ignore_errors()
    ok = {int(i) for i, _ in decoded.as_numpy_iterator()}
    return [i for i in range(len(images)) if i not in ok]


def build_cnn_small(image_size: int, num_classes: int, dropout: float) -> keras.Model:
    """A small CNN trained from scratch.

    Three Conv(3×3)-BatchNorm-ReLU blocks (32, 64, 128 filters; the first two max-pooled),
    global average pooling, dropout and a softmax layer. Random translation/rotation/zoom
    augmentation runs in training only.

    Returns:
        A model mapping float32 ``[batch, image_size, image_size, 3]`` in [0, 1] to softmax
        probabilities ``[batch, num_classes]``.
    """
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="augment_translate")(
        inputs
    )
    x = keras.layers.RandomRotation(0.05, fill_mode="constant", name="augment_rotate")(x)
    x = keras.layers.RandomZoom(0.1, fill_mode="constant", name="augment_zoom")(x)
    for i, filters in enumerate((32, 64, 128)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if i < 2:
            x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="cnn_small")


def hub_input_size(module: Any) -> int | None:
    """The square input size a loaded TF Hub image module expects, or None if not fixed.

    Reads the ``[batch, height, width, 3]`` input spec of the module's traced ``__call__``
    (Reusable SavedModel), then of its ``serving_default`` signature.
    """
    specs: list[Any] = []
    call = module.__call__ if callable(module) else None
    for fn in getattr(call, "concrete_functions", None) or []:
        args, kwargs = fn.structured_input_signature
        specs.extend(s for s in (*args, *kwargs.values()) if isinstance(s, tf.TensorSpec))
    signature = getattr(module, "signatures", {}).get("serving_default")
    if signature is not None:
        specs.extend(
            s
            for s in signature.structured_input_signature[1].values()
            if isinstance(s, tf.TensorSpec)
        )
    for spec in specs:
        shape = spec.shape
        if shape.rank == 4 and shape[1] is not None and shape[1] == shape[2]:
            return int(shape[1])
    return None


def build_hub_model(
    module: Any, image_size: int, num_classes: int, *, fine_tune: bool, dropout: float
) -> keras.Model:
    """A TF Hub feature extractor (``hub.KerasLayer``) with a dropout + softmax head.

    Args:
        module: a handle (URL or path) or an already loaded Reusable SavedModel.
        fine_tune: train the backbone too (``trainable=True``); else only the head learns.

    Returns:
        A model mapping float32 ``[batch, image_size, image_size, 3]`` in [0, 1] to softmax
        probabilities ``[batch, num_classes]``.
    """
    import tensorflow_hub as hub

    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = hub.KerasLayer(module, trainable=fine_tune, name="backbone")(inputs)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="scores")(x)
    return keras.Model(inputs, outputs, name="hub_classifier")


def train(
    spec: TrainSpec, *, on_epoch: EpochCallback | None = None, should_stop: StopCheck | None = None
) -> TrainResult:
    """Train, evaluate and export an image classifier.

    ``spec.base_model == "cnn-small"`` trains :func:`build_cnn_small`; any other base model
    needs ``spec.handle`` (a TF Hub URL or a local Reusable SavedModel path) and trains
    :func:`build_hub_model`. The input size is ``image_size`` for cnn-small; for hub models it
    is read from the module (``image_size`` may set it when the module accepts any size;
    224 when neither says).

    Returns:
        The :class:`TrainResult`; the SavedModel (raw image bytes in, ``scores`` out) is in
        ``spec.output_dir/saved_model``.

    Raises:
        TrainingInputError: unreadable archive or images, invalid hyperparameters, classes
            too small to split, or an ``image_size`` the hub module does not accept.
        TrainingCancelled: ``should_stop()`` returned True; nothing is exported.
        ValueError: a non-cnn-small base model without a handle (a platform bug).
    """
    is_cnn = spec.base_model == CNN_SMALL
    if not is_cnn and not spec.handle:
        raise ValueError(f"Base model {spec.base_model!r} needs a TF Hub handle.")
    hp = resolve_hyperparameters(spec.base_model, spec.hyperparameters)

    members, images, labels = read_zip(spec.dataset_path)
    broken = find_undecodable(images)
    if broken:
        shown = ", ".join(posixpath.basename(members[i]) for i in broken[:5])
        raise TrainingInputError(f"{len(broken)} image(s) cannot be decoded: {shown}.")
    classes, y = encode_labels(labels)
    reject_newlines_in_labels(classes)
    # Copies of one image (the same bytes under another name) stay on one side.
    groups = splits.group_ids(splits.bytes_keys(images))
    train_idx, val_idx = splits.grouped_stratified_split(
        y, groups, classes, validation_split=hp["validation_split"], seed=spec.seed
    )

    seed_everything(spec.seed)
    if is_cnn:
        image_size = hp["image_size"]
        model = build_cnn_small(image_size, len(classes), hp["dropout"])
    else:
        import tensorflow_hub as hub

        module = hub.load(spec.handle)
        fixed = hub_input_size(module)
        if fixed is not None and hp["image_size"] not in (None, fixed):
            raise TrainingInputError(
                f"This base model takes {fixed}×{fixed} images; image_size cannot change that."
            )
        image_size = fixed or hp["image_size"] or DEFAULT_HUB_IMAGE_SIZE
        hp["image_size"] = image_size
        model = build_hub_model(
            module, image_size, len(classes), fine_tune=hp["fine_tune"], dropout=hp["dropout"]
        )

    x = np.array(images, dtype=object)

    def decode(encoded: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return preprocess_image(encoded, image_size), label

    cache = len(train_idx) * image_size * image_size * 3 * 4 <= CACHE_LIMIT_BYTES
    batch_size = hp["batch_size"]
    data = Split(
        train=dataset_from_arrays(
            x[train_idx],
            y[train_idx],
            batch_size=batch_size,
            shuffle=True,
            seed=spec.seed,
            map_fn=decode,
            cache=cache,
        ),
        validation=dataset_from_arrays(
            x[val_idx],
            y[val_idx],
            batch_size=batch_size,
            shuffle=False,
            seed=spec.seed,
            map_fn=decode,
            cache=cache,
        ),
        val_y=y[val_idx],
        val_inputs=[members[i] for i in val_idx],
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

    def serve(inputs: tf.Tensor) -> tf.Tensor:
        pixels = tf.map_fn(
            lambda b: preprocess_image(b, image_size),
            inputs,
            fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
        )
        return model(pixels, training=False)

    # Track the variables, not the Keras model: serve() captures them, and saving the model
    # itself would add Keras's own serialisation (extra traces, seconds per export).
    module_to_save = tf.Module()
    module_to_save.model_variables = list(model.variables)
    export_saved_model(module=module_to_save, serve=serve, classes=classes, saved_model_dir=out_dir)
    return result
