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
        "live", "validation_examples"}``; ``epochs`` is the series the training curves are
        drawn from, ``per_class`` ``[(label, {"precision", "recall", "f1", "support"})]`` by
        label, ``validation_examples`` the sum of the classes' supports.
    """
    metrics = dict(metrics or {})
    per_class = metrics.get("per_class") or {}
    total, percent = job_progress(status=status, epoch=epoch, epochs=hyperparameters.get("epochs"))
    heat_labels, heat = confusion_heat(metrics.get("confusion_matrix"))
    return {
        "epochs": latest_epochs(epoch_reports),
        "percent": percent,
        "total_epochs": total,
        "metrics": metrics,
        "per_class": sorted(per_class.items()),
        "heat_labels": heat_labels,
        "heat": heat,
        "live": status in LIVE_STATUSES,
        "validation_examples": sum(int(m.get("support", 0)) for m in per_class.values()),
    }
