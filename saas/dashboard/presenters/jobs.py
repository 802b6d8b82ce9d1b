"""Training job pages: epoch reports, the progress bar, the confusion heat map, and the
job page's computed values. The training curves are drawn by :mod:`saas.dashboard.charts`
from the ``epochs`` series :func:`job_context` returns.

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Job statuses during which the job page keeps polling itself.
LIVE_STATUSES = ("queued", "running")


#: Events shown in a job's timeline (the most recent ones).
TIMELINE_EVENTS = 30

#: Classes of the confusion matrix the job page draws: a larger matrix is cut to the classes
#: with the most validation examples (400 cells, not 4 M), the whole one is a download.
HEAT_MAX_CLASSES = 20
#: Rows of the per-class table: past it, the classes with the most support (the API's job and
#: the matrix download have them all).
PER_CLASS_MAX_ROWS = 100


def latest_epochs(epochs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A job's ``epoch`` events' data, one per epoch number, ascending.

    A job restarted by a new attempt reports its epochs again: the last report of each epoch
    wins. A report without ``epoch`` counts as epoch 0.
    """
    by_epoch: dict[int, dict[str, Any]] = {}
    for data in epochs:
        by_epoch[int(data.get("epoch", 0))] = dict(data)
    return [by_epoch[k] for k in sorted(by_epoch)]


def job_progress(*, status: str, epoch: int, epochs: int | None) -> tuple[int, int]:
    """``(total epochs, percent done)`` for the progress bar.

    Args:
        status: the job's status.
        epoch: the last epoch the job finished (0 before the first).
        epochs: the ``epochs`` hyperparameter; missing or 0 counts as 1 so the bar is defined.

    Returns:
        A succeeded job is at 100 %, whatever epoch it reported; otherwise
        ``epoch / total``, truncated to a whole percent and capped at 100.
    """
    total = int(epochs or 1)
    if status == "succeeded":
        return total, 100
    return total, min(100, int(epoch * 100 / total))


def confusion_top(
    confusion: Mapping[str, Any] | None,
    per_class: Mapping[str, Mapping[str, Any]] | None,
    limit: int = HEAT_MAX_CLASSES,
) -> tuple[dict[str, Any], int]:
    """The confusion matrix cut to its ``limit`` classes with the most support.

    Args:
        confusion: ``{"labels": [label], "matrix": [[count]]}`` (rows: true class), or None.
        per_class: ``{label: {"support": int, …}}``; a label missing from it has the sum of
            its matrix row as its support.
        limit: how many classes to keep.

    Returns:
        ``(matrix, total classes)``: ``matrix`` in the same shape, with the kept classes in
        their original order and only their rows and columns (so a kept row's counts need
        not sum to its support); unchanged when it has at most ``limit`` classes. Ties in
        support keep the earlier label.
    """
    cm = confusion or {}
    labels = list(cm.get("labels", []))
    rows = list(cm.get("matrix", []))
    total = len(labels)
    if total <= limit:
        return {"labels": labels, "matrix": rows}, total
    support = per_class or {}

    def weight(i: int) -> int:
        known = (support.get(labels[i]) or {}).get("support")
        return int(known) if known is not None else sum(rows[i]) if i < len(rows) else 0

    keep = sorted(sorted(range(total), key=lambda i: (-weight(i), i))[:limit])
    return {
        "labels": [labels[i] for i in keep],
        "matrix": [[rows[i][j] for j in keep] for i in keep if i < len(rows)],
    }, total


def confusion_heat(confusion: Mapping[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The confusion matrix as a heat map: each cell shaded by its share of its (true) row.

    Args:
        confusion: ``{"labels": [label], "matrix": [[count]]}`` (rows: true class, columns:
            predicted class), or ``None``/``{}`` before the job has metrics.

    Returns:
        ``(labels, rows)`` with rows ``[{"label", "cells": [{"value", "share", "alpha"}]}]``:
        ``share`` is the cell's fraction of its row (0 for an all-zero row), ``alpha`` the
        cell's opacity, ``0.08 + 0.92 * share`` rounded to 3 places (an empty cell is still
        faintly visible). Labels and rows are paired up to the shorter of the two.
    """
    cm = confusion or {}
    labels = list(cm.get("labels", []))
    rows = []
    for label, row in zip(labels, cm.get("matrix", []), strict=False):
        total_row = sum(row) or 1
        rows.append(
            {
                "label": label,
                "cells": [
                    {
                        "value": v,
                        "share": v / total_row,
                        "alpha": round(0.08 + 0.92 * v / total_row, 3),
                    }
                    for v in row
                ],
            }
        )
    return labels, rows


def job_context(
    *,
    status: str,
    epoch: int,
    hyperparameters: Mapping[str, Any],
    metrics: Mapping[str, Any] | None,
    epoch_reports: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Everything the job page shows that is computed from the job's own values.

    Args:
        status: the job's status.
        epoch: the last epoch it finished.
        hyperparameters: its resolved hyperparameters (``epochs`` is read).
        metrics: its metrics (``per_class``, ``confusion_matrix``), or ``None``.
        epoch_reports: the data of its ``epoch`` events, oldest first.

    Returns:
        ``{"epochs", "percent", "total_epochs", "metrics", "per_class", "heat_labels", "heat",
        "heat_classes", "heat_total", "per_class_total", "live", "validation_examples"}``;
        ``epochs`` is the series the training curves are drawn from, ``per_class``
        ``[(label, {"precision", "recall", "f1", "support"})]`` by label (at most
        :data:`PER_CLASS_MAX_ROWS`, those with the most support, of ``per_class_total``), the
        heat map at most :data:`HEAT_MAX_CLASSES` classes
        (``heat_classes`` of ``heat_total``; see :func:`confusion_top`), ``validation_examples``
        the sum of the classes' supports.
    """
    metrics = dict(metrics or {})
    per_class = metrics.get("per_class") or {}
    total, percent = job_progress(status=status, epoch=epoch, epochs=hyperparameters.get("epochs"))
    top, heat_total = confusion_top(metrics.get("confusion_matrix"), per_class)
    heat_labels, heat = confusion_heat(top)
    rows = sorted(per_class.items())
    if len(rows) > PER_CLASS_MAX_ROWS:
        by_support = sorted(rows, key=lambda kv: -int((kv[1] or {}).get("support", 0)))
        rows = sorted(by_support[:PER_CLASS_MAX_ROWS])
    return {
        "epochs": latest_epochs(epoch_reports),
        "percent": percent,
        "total_epochs": total,
        "metrics": metrics,
        "per_class": rows,
        "per_class_total": len(per_class),
        "heat_labels": heat_labels,
        "heat": heat,
        "heat_classes": len(heat_labels),
        "heat_total": heat_total,
        "live": status in LIVE_STATUSES,
        "validation_examples": sum(int(m.get("support", 0)) for m in per_class.values()),
    }
