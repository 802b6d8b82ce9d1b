"""Metrics and misclassified examples on a hand-made prediction set."""

from __future__ import annotations

import numpy as np
import pytest

from workers.ml.evaluation import evaluate


def test_metrics_match_hand_computed_values():
    classes = ["cat", "dog", "eel"]
    y_true = [0, 0, 1, 1, 2]
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # cat -> cat
            [0.3, 0.6, 0.1],  # cat -> dog (0.6)
            [0.1, 0.8, 0.1],  # dog -> dog
            [0.2, 0.7, 0.1],  # dog -> dog
            [0.95, 0.0, 0.05],  # eel -> cat (0.95)
        ]
    )
    inputs = ["a", "b", "c", "d", "e"]
    metrics, mistakes = evaluate(y_true, probs, classes, inputs)

    assert metrics["accuracy"] == pytest.approx(0.6)
    # cat: P 1/2 R 1/2 F1 1/2; dog: P 2/3 R 1 F1 0.8; eel: never predicted -> 0.
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert metrics["per_class"] == {
        "cat": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "dog": {
            "precision": pytest.approx(2 / 3),
            "recall": 1.0,
            "f1": pytest.approx(0.8),
            "support": 2,
        },
        "eel": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
    }
    assert metrics["confusion_matrix"] == {
        "labels": classes,
        "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 0]],
    }
    assert mistakes == [
        {"input": "e", "true_label": "eel", "predicted_label": "cat", "score": pytest.approx(0.95)},
        {"input": "b", "true_label": "cat", "predicted_label": "dog", "score": pytest.approx(0.6)},
    ]


def test_misclassified_is_capped_most_confident_first():
    rng = np.random.default_rng(0)
    n = 300
    probs = rng.dirichlet([1, 1], size=n)
    y_true = 1 - probs.argmax(axis=1)  # every prediction wrong
    metrics, mistakes = evaluate(y_true, probs, ["a", "b"], [str(i) for i in range(n)])
    assert metrics["accuracy"] == 0.0
    assert len(mistakes) == 200
    scores = [m["score"] for m in mistakes]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(probs.max())


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        evaluate([0, 1], np.ones((3, 2)) / 2, ["a", "b"], ["x", "y"])
