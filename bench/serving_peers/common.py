"""What every peer server in bench/serving.py shares: load the SavedModel, classify a batch.

Runs inside a peer's own virtualenv (TensorFlow, no Trainyard code). ``BENCH_SAVED_MODEL`` names
the SavedModel directory (the one Trainyard trained, downloaded from ``/v1/models/{id}/download``).
"""

from __future__ import annotations

import os
from typing import Any

import tensorflow as tf


class SavedModelClassifier:
    """The ``serving_default`` concrete function of a Trainyard text SavedModel.

    Args:
        path: SavedModel directory holding ``assets/labels.txt``.
    """

    def __init__(self, path: str | None = None) -> None:
        path = path or os.environ["BENCH_SAVED_MODEL"]
        with open(os.path.join(path, "assets", "labels.txt"), encoding="utf-8") as fh:
            self.labels = [line.rstrip("\n") for line in fh if line.strip()]
        self._module = tf.saved_model.load(path)  # keeps the variables alive
        self._fn = self._module.signatures["serving_default"]

    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """One ``{"label", "score", "scores"}`` per text, in order (Trainyard's answer shape)."""
        scores = self._fn(inputs=tf.constant(texts, dtype=tf.string))["scores"].numpy()
        out = []
        for row in scores.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                {
                    "label": self.labels[best],
                    "score": row[best],
                    "scores": dict(zip(self.labels, row, strict=True)),
                }
            )
        return out
