"""The training job presenters (epochs, progress, the confusion heat map, the job page): plain
values in, plain values out, no database."""

from __future__ import annotations

import pytest

from saas.dashboard import presenters as p


def test_latest_epochs_keep_the_last_report_of_each_epoch_in_epoch_order():
    reports = [
        {"epoch": 1, "loss": 0.9},
        {"epoch": 2, "loss": 0.7},
        {"epoch": 1, "loss": 0.8},  # a new attempt reports epoch 1 again
        {"loss": 1.5},  # no epoch number: epoch 0
    ]
    assert p.latest_epochs(reports) == [
        {"loss": 1.5},
        {"epoch": 1, "loss": 0.8},
        {"epoch": 2, "loss": 0.7},
    ]
    assert p.latest_epochs([]) == []


@pytest.mark.parametrize(
    ("status", "epoch", "epochs", "expected"),
    [
        ("queued", 0, 10, (10, 0)),
        ("running", 3, 10, (10, 30)),
        ("running", 1, 3, (3, 33)),
        ("running", 12, 10, (10, 100)),  # more epochs reported than asked: capped
        ("running", 0, 0, (1, 0)),  # 0 epochs: counted as 1, no division by zero
        ("running", 0, None, (1, 0)),
        ("failed", 2, 4, (4, 50)),
        ("succeeded", 0, 0, (1, 100)),
        ("succeeded", 4, 10, (10, 100)),  # stopped early but succeeded: full bar
    ],
)
def test_job_progress(status, epoch, epochs, expected):
    assert p.job_progress(status=status, epoch=epoch, epochs=epochs) == expected


@pytest.mark.parametrize("confusion", [None, {}, {"labels": [], "matrix": []}])
def test_confusion_heat_of_an_empty_matrix_is_empty(confusion):
    assert p.confusion_heat(confusion) == ([], [])


def test_confusion_heat_shades_each_cell_by_its_share_of_the_row():
    labels, rows = p.confusion_heat({"labels": ["neg", "pos"], "matrix": [[3, 1], [0, 4]]})
    assert labels == ["neg", "pos"]
    assert rows == [
        {
            "label": "neg",
            "cells": [
                {"value": 3, "share": 0.75, "alpha": 0.77},
                {"value": 1, "share": 0.25, "alpha": 0.31},
            ],
        },
        {
            "label": "pos",
            "cells": [
                {"value": 0, "share": 0.0, "alpha": 0.08},
                {"value": 4, "share": 1.0, "alpha": 1.0},
            ],
        },
    ]


def test_confusion_heat_of_one_class():
    assert p.confusion_heat({"labels": ["only"], "matrix": [[7]]}) == (
        ["only"],
        [{"label": "only", "cells": [{"value": 7, "share": 1.0, "alpha": 1.0}]}],
    )


def test_confusion_heat_row_with_no_examples_is_faint_not_a_division_by_zero():
    _, rows = p.confusion_heat({"labels": ["a", "b"], "matrix": [[0, 0], [1, 2]]})
    assert rows[0]["cells"] == [
        {"value": 0, "share": 0.0, "alpha": 0.08},
        {"value": 0, "share": 0.0, "alpha": 0.08},
    ]
    assert rows[1]["cells"][1]["alpha"] == round(0.08 + 0.92 * 2 / 3, 3)


def test_confusion_heat_keeps_very_long_labels_whole():
    long = "a very long label " * 40
    labels, rows = p.confusion_heat({"labels": [long, "b"], "matrix": [[1, 0], [0, 1]]})
    assert labels[0] == long and rows[0]["label"] == long


def test_confusion_heat_pairs_labels_and_rows_up_to_the_shorter():
    labels, rows = p.confusion_heat({"labels": ["a", "b", "c"], "matrix": [[1, 1]]})
    assert labels == ["a", "b", "c"]
    assert [r["label"] for r in rows] == ["a"]


def test_job_context_of_a_queued_job_without_metrics():
    ctx = p.job_context(
        status="queued", epoch=0, hyperparameters={}, metrics=None, epoch_reports=[]
    )
    assert ctx == {
        "epochs": [],
        "percent": 0,
        "total_epochs": 1,
        "metrics": {},
        "per_class": [],
        "per_class_total": 0,
        "heat_labels": [],
        "heat": [],
        "heat_classes": 0,
        "heat_total": 0,
        "live": True,
        "validation_examples": 0,
    }


def test_job_context_of_a_succeeded_job():
    metrics = {
        "accuracy": 0.9,
        "per_class": {
            "pos": {"precision": 1.0, "recall": 0.8, "f1": 0.89, "support": 5},
            "neg": {"precision": 0.8, "recall": 1.0, "f1": 0.89, "support": 4},
        },
        "confusion_matrix": {"labels": ["neg", "pos"], "matrix": [[4, 0], [1, 4]]},
    }
    ctx = p.job_context(
        status="succeeded",
        epoch=2,
        hyperparameters={"epochs": 2, "batch_size": 32},
        metrics=metrics,
        epoch_reports=[{"epoch": 1, "loss": 0.6}, {"epoch": 2, "loss": 0.4}],
    )
    assert ctx["percent"] == 100 and ctx["total_epochs"] == 2 and ctx["live"] is False
    assert ctx["epochs"] == [{"epoch": 1, "loss": 0.6}, {"epoch": 2, "loss": 0.4}]
    assert [label for label, _ in ctx["per_class"]] == ["neg", "pos"]
    assert ctx["validation_examples"] == 9
    assert ctx["heat_labels"] == ["neg", "pos"]
    assert ctx["heat"][1]["cells"][0] == {"value": 1, "share": 0.2, "alpha": 0.264}
    assert ctx["metrics"] == metrics


@pytest.mark.parametrize(
    ("status", "live"),
    [("queued", True), ("running", True), ("succeeded", False), ("failed", False)]
    + [("cancelled", False)],
)
def test_job_context_is_live_while_queued_or_running(status, live):
    ctx = p.job_context(
        status=status, epoch=0, hyperparameters={"epochs": 0}, metrics={}, epoch_reports=[]
    )
    assert ctx["live"] is live


def test_confusion_top_keeps_the_classes_with_the_most_support_in_their_order():
    cm = {
        "labels": ["a", "b", "c", "d"],
        "matrix": [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]],
    }
    support = {"a": {"support": 1}, "b": {"support": 9}, "c": {"support": 3}, "d": {"support": 9}}
    top, total = p.confusion_top(cm, support, limit=2)
    assert total == 4
    assert top == {"labels": ["b", "d"], "matrix": [[6, 8], [14, 16]]}
    # ties keep the earlier label; a label without support weighs its row's sum
    top, _ = p.confusion_top(cm, {"a": {"support": 9}}, limit=2)
    assert top["labels"] == ["c", "d"]  # rows c (42) and d (58) outweigh a's 9 and b's 26
    small, total = p.confusion_top(cm, support, limit=4)
    assert small == cm and total == 4
    assert p.confusion_top(None, None) == ({"labels": [], "matrix": []}, 0)


def test_job_context_cuts_a_large_matrix_and_per_class_table():
    labels = [f"k{i:03d}" for i in range(150)]
    metrics = {
        "per_class": {
            lab: {"precision": 1, "recall": 1, "f1": 1, "support": 150 - i}
            for i, lab in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": [[1 if i == j else 0 for j in range(150)] for i in range(150)],
        },
    }
    ctx = p.job_context(
        status="succeeded", epoch=1, hyperparameters={}, metrics=metrics, epoch_reports=[]
    )
    assert ctx["heat_labels"] == labels[: p.HEAT_MAX_CLASSES]
    assert ctx["heat_classes"] == p.HEAT_MAX_CLASSES and ctx["heat_total"] == 150
    assert [lab for lab, _m in ctx["per_class"]] == labels[: p.PER_CLASS_MAX_ROWS]
    assert ctx["per_class_total"] == 150
    assert ctx["validation_examples"] == sum(range(1, 151))
