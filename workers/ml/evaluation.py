"""Classification metrics from predictions (scikit-learn); no TensorFlow here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

MAX_MISCLASSIFIED = 200


def evaluate(
    y_true_idx: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    classes: Sequence[str],
    inputs: Sequence[str],
    *,
    max_misclassified: int = MAX_MISCLASSIFIED,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics and the most confident mistakes for one labelled prediction set.

    Args:
        y_true_idx: true class indices, int ``[N]``, each in ``range(C)``.
        probs: predicted probabilities, float ``[N, C]``; the prediction is the argmax.
        classes: ``C`` label names, in model output order.
        inputs: ``N`` display strings (the text, or the archive member path).
        max_misclassified: cap on the returned mistakes.

    Returns:
        ``(metrics, misclassified)``. ``metrics`` is ``{"accuracy": float, "macro_f1": float,
        "per_class": {label: {"precision", "recall", "f1": float, "support": int}},
        "confusion_matrix": {"labels": [C labels], "matrix": C×C ints, rows = true class,
        columns = predicted class}}``. Classes never predicted get precision 0 (no warning).
        ``misclassified`` lists ``{"input", "true_label", "predicted_label", "score"}`` where
        ``score`` is the probability of the predicted class, highest score first (ties keep
        input order), at most ``max_misclassified`` entries.

    Raises:
        ValueError: empty input, or ``probs``/``inputs`` lengths that do not match
            ``y_true_idx``, or ``probs`` not having ``C`` columns.
    """
    y_true = np.asarray(y_true_idx, dtype=np.int64)
    probs = np.asarray(probs)
    num_classes = len(classes)
    if y_true.size == 0:
        raise ValueError("evaluate() needs at least one example.")
    if probs.shape != (len(y_true), num_classes) or len(inputs) != len(y_true):
        raise ValueError(
            f"Shape mismatch: y_true {y_true.shape}, probs {probs.shape}, "
            f"inputs {len(inputs)}, classes {num_classes}."
        )
    y_pred = probs.argmax(axis=1)
    labels = list(range(num_classes))

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": {"labels": list(classes), "matrix": matrix.astype(int).tolist()},
    }

    wrong = np.flatnonzero(y_pred != y_true)
    scores = probs[wrong, y_pred[wrong]]
    order = wrong[np.argsort(-scores, kind="stable")][:max_misclassified]
    misclassified = [
        {
            "input": inputs[i],
            "true_label": classes[y_true[i]],
            "predicted_label": classes[y_pred[i]],
            "score": float(probs[i, y_pred[i]]),
        }
        for i in order
    ]
    return metrics, misclassified
