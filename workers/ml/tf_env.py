"""Environment defaults that must be in place before TensorFlow is first imported.

Import this module (for its side effect) before ``tensorflow``, ``tensorflow_hub`` or
``tf_keras`` in every module that uses them:

- ``TF_USE_LEGACY_KERAS=1`` makes ``tf.keras`` resolve to Keras 2 (``tf_keras``);
  ``hub.KerasLayer`` only works with Keras 2.
- ``TF_CPP_MIN_LOG_LEVEL=2`` hides TensorFlow's C++ info and warning logs in worker output.

``setdefault`` is used so that an operator can still override either variable.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
