"""Build a local TF Hub image feature-vector module (no network, random weights).

The platform's hub base models are normally resolved to tfhub.dev / Kaggle handles. Workers
have no internet access in tests and air-gapped installs, so this writes a module with the
same interface as ``https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5``
(the TF Hub *Reusable SavedModel* API, https://www.tensorflow.org/hub/reusable_saved_models),
but with randomly initialised weights: it exercises the whole hub code path (loading,
``hub.KerasLayer``, fine-tuning, export) without downloading anything.
"""

from __future__ import annotations

import workers.ml.tf_env  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split

import tensorflow as tf
import tf_keras as keras


def _calibrate_batch_norm(backbone, image_size: int, seed: int, batch: int = 32) -> None:
    """Set every BatchNormalization layer's moving mean and variance from one batch of noise.

    With random weights and the initial moving statistics (mean 0, variance 1), activations
    shrink layer after layer in inference mode: the 1280 features come out around 1e-12 and a
    head trained on them stays at chance. One forward pass in training mode with momentum 0
    copies each layer's batch statistics into its moving statistics (a data-independent
    initialisation in the spirit of Mishkin & Matas, "All you need is a good init", ICLR 2016),
    so the frozen module emits unit-scale features. Momentum is then restored for fine-tuning.
    """
    layers = [
        layer for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    noise = tf.random.stateless_uniform([batch, image_size, image_size, 3], seed=[seed, 1])
    backbone(noise * 2.0 - 1.0, training=True)
    for layer, momentum in zip(layers, saved, strict=True):
        layer.momentum = momentum


def build_mobilenet_v2_feature_vector(
    path: str, *, image_size: int = 224, alpha: float = 1.0, seed: int = 0
) -> str:
    """Write a randomly initialised MobileNetV2 feature-vector module as a Reusable SavedModel.

    The saved object has:

    - ``__call__(inputs, training=False)``: ``inputs`` float32 ``[batch, image_size,
      image_size, 3]`` with values in [0, 1] (rescaled to MobileNetV2's [-1, 1] inside);
      returns float32 ``[batch, D]`` features, global-average-pooled, where ``D`` is 1280 for
      ``alpha <= 1`` and ``int(1280 * alpha)`` above. Traced for ``training`` True (batch-norm
      uses batch statistics and updates its moving averages) and False.
    - ``variables``, ``trainable_variables``: the backbone's variables; ``hub.KerasLayer(path,
      trainable=True)`` fine-tunes ``trainable_variables``.
    - ``regularization_losses``: an empty list (MobileNetV2 has no weight regularisers).
    - signature ``serving_default``: ``inputs`` as above → ``{"feature_vector": [batch, D]}``.

    Args:
        path: output directory (created; an existing SavedModel there is overwritten).
        image_size: input height and width in pixels, at least 32.
        alpha: MobileNetV2 width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 are the usual).
        seed: seeds the random initialisation.

    Returns:
        ``path``.

    Raises:
        ValueError: ``image_size`` < 32 or an ``alpha`` Keras rejects.
    """
    if image_size < 32:
        raise ValueError("MobileNetV2 needs images of at least 32×32 pixels.")
    keras.utils.set_random_seed(seed)
    backbone = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        alpha=alpha,
        include_top=False,
        weights=None,
        pooling="avg",
    )
    _calibrate_batch_norm(backbone, image_size, seed)
    input_spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name="inputs")

    def features(inputs: tf.Tensor, training: bool) -> tf.Tensor:
        return backbone(inputs * 2.0 - 1.0, training=training)  # [0, 1] -> MobileNet's [-1, 1]

    @tf.function
    def call(inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        return features(inputs, training)

    @tf.function(input_signature=[input_spec])
    def serving_default(inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        # Traced on its own rather than through call(): nesting the function makes TensorFlow
        # warn about hundreds of unnamed captured inputs when saving.
        return {"feature_vector": features(inputs, False)}

    # A plain trackable object rather than the Keras model itself: saving the model would add
    # Keras's own serialisation (several more traces) that hub.KerasLayer never uses.
    module = tf.train.Checkpoint()
    module.variables = list(backbone.variables)
    module.trainable_variables = list(backbone.trainable_variables)
    module.regularization_losses = []
    module.__call__ = call
    for training in (False, True):
        call.get_concrete_function(input_spec, training)
    tf.saved_model.save(module, path, signatures={"serving_default": serving_default})
    return path
