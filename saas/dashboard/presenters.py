"""Pure presentation for the dashboard pages: plain values in, plain dicts and lists out.

Nothing here queries the database, reads a request or renders HTML, so every function can be
tested without a database and a view is left with "read, write, present, render". The SVG
charts are drawn by :mod:`saas.dashboard.charts` from the series these functions return.
"""

from __future__ import annotations

import datetime
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from saas.datasets.models import Task

from .templatetags.dashboard import meter_label

#: The longest raw CSV line shown beside a validation problem (characters).
OFFENDING_LINE_CHARS = 200
#: Job statuses during which the job page keeps polling itself.
LIVE_STATUSES = ("queued", "running")
#: Events shown in a job's timeline (the most recent ones).
TIMELINE_EVENTS = 30

# The example inputs of the "call it from your code" snippets (text models).
_TEXT_EXAMPLES = '["I love it, works great", "Broke after a week"]'


# --- errors and forms -------------------------------------------------------------------------


def problem_list(errors: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """The entries of a domain error's ``errors`` that have a message, as dicts.

    Args:
        errors: ``[{"field": str | None, "message": str, "line"?: int, ...}]`` or ``None``.

    Returns:
        The same entries, in order, without those whose ``message`` is empty or missing.
    """
    return [dict(e) for e in (errors or []) if e.get("message")]


def form_problems(errors: Mapping[str, Iterable[object]]) -> list[dict[str, Any]]:
    """A Django form's ``errors`` (``{field: [message, ...]}``) as ``[{"field", "message"}]``,
    the messages of one field joined by a space."""
    # Iterating Django's ErrorList yields message strings (typed as ValidationError | str).
    return [
        {"field": field, "message": " ".join(str(m) for m in msgs)}
        for field, msgs in errors.items()
    ]


def split_field_problems(
    problems: Iterable[Mapping[str, Any]], *, fields: Iterable[str], fallback: str
) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Sort a service's problems into those a form field can show and the rest.

    ``hyperparameters.epochs`` belongs to the field ``epochs``: the API names hyperparameters
    by their path in the JSON body, the training form flattens them.

    Args:
        problems: ``[{"field": str | None, "message": str}]``.
        fields: the form's field names.
        fallback: the error's summary, shown alone when no problem is left for the page.

    Returns:
        ``([(field, message)], page_problems)``; ``page_problems`` is never empty.
    """
    names = set(fields)
    on_fields: list[tuple[str, str]] = []
    rest: list[dict[str, Any]] = []
    for p in problems:
        name = (p.get("field") or "").removeprefix("hyperparameters.")
        if name in names:
            on_fields.append((name, p["message"]))
        else:
            rest.append(dict(p))
    return on_fields, rest or [{"field": None, "message": fallback}]


def offending_lines(data: bytes, problems: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Attach the raw text of each CSV problem's ``line`` for display.

    Args:
        data: the uploaded CSV's bytes (any encoding; undecodable bytes are replaced).
        problems: ``[{"message", "line"?: int (1-based, physical line of the file)}]``.

    Returns:
        The problems unchanged when none has an integer ``line``; otherwise each problem with
        its ``message`` stripped of a leading ``"line N: "`` and ``text``: that line without
        its line ending, at most ``OFFENDING_LINE_CHARS`` characters (``None`` when the file
        has no such line or the problem names no line).
    """
    rows = [dict(p) for p in problems]
    wanted = {p["line"] for p in rows if isinstance(p.get("line"), int)}
    if not wanted:
        return rows
    last = max(wanted)
    texts: dict[int, str] = {}
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if number in wanted:
            texts[number] = raw.decode("utf-8", "replace").rstrip("\r\n")[:OFFENDING_LINE_CHARS]
        if number >= last:
            break
    return [
        {
            **p,
            "message": p["message"].removeprefix(f"line {p.get('line')}: "),
            "text": texts.get(p["line"]) if isinstance(p.get("line"), int) else None,
        }
        for p in rows
    ]


# --- numbers ----------------------------------------------------------------------------------


def count(n: int) -> str:
    """An integer with thousands separators: ``3000`` → ``"3,000"``."""
    return f"{n:,}"


def quantity_total(values: Iterable[float]) -> Decimal:
    """The sum of a meter's daily quantities as a normalised ``Decimal`` (``12.50`` → ``12.5``,
    ``0`` → ``0``), built from the float's shortest ``repr``, not its exact binary value.

    ``normalize`` drops the trailing zeros of whole numbers too (``120`` is
    ``Decimal("1.2E+2")``); Django's templates localise a ``Decimal`` in fixed point, so the
    page still shows ``120``. Format it with ``{:f}`` anywhere else.
    """
    return Decimal(str(sum(values))).normalize()


def cap_percent(total: Decimal, cap: Decimal | None) -> int | None:
    """How much of the monthly spend cap this period's ``total`` uses, in whole percent (0–100,
    truncated); ``None`` when there is no cap or it is zero (nothing to measure against)."""
    if not cap:
        return None
    return min(100, int(total * 100 / cap))


# --- overview ---------------------------------------------------------------------------------


def getting_started_steps(
    *,
    has_dataset: bool,
    has_job: bool,
    has_model: bool,
    has_key: bool,
    can_upload: bool,
    can_train: bool,
    can_predict: bool,
    can_create_key: bool,
) -> list[tuple[str, bool, str, bool]]:
    """The home page's checklist: ``[(what, done, url name, whether this role may do it)]``."""
    return [
        ("Upload a labelled dataset", has_dataset, "dashboard:dataset_new", can_upload),
        ("Train a model", has_job, "dashboard:job_new", can_train),
        ("Try it in the browser", has_model, "dashboard:models", can_predict),
        ("Create an API key", has_key, "dashboard:keys", can_create_key),
    ]


# --- datasets ---------------------------------------------------------------------------------


def class_rows(classes: Mapping[str, int]) -> list[tuple[str, int]]:
    """``{label: count}`` as ``[(label, count)]``, largest first, ties by label."""
    return sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))


def thumbnails(samples: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Sample images ``[(member name, label)]`` as ``[{"n": index, "label", "name"}]``; ``n`` is
    the index the thumbnail URL takes."""
    return [{"n": i, "label": label, "name": name} for i, (name, label) in enumerate(samples)]


# --- training jobs ----------------------------------------------------------------------------


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


# --- models -----------------------------------------------------------------------------------


def snippets(*, base_url: str, model_id: str, task: str) -> dict[str, str]:
    """The "call it from your code" examples for one model.

    Args:
        base_url: the host the browser used, without a trailing slash
            (``https://trainyard.example``).
        model_id: the model's id (``mdl_…``).
        task: ``text-classification`` (a JSON body) or anything else (an image upload).

    Returns:
        ``{"curl", "python", "url"}``: shell and Python source reading the key from
        ``TRAINYARD_API_KEY``, and the predict URL they call.
    """
    url = f"{base_url}/v1/models/{model_id}/predict"
    if task == Task.TEXT_CLASSIFICATION:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            f"  -d '{{\"inputs\": {_TEXT_EXAMPLES}}}'"
        )
        python = (
            "import os\nimport requests\n\n"
            "response = requests.post(\n"
            f'    "{url}",\n'
            '    headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            f'    json={{"inputs": {_TEXT_EXAMPLES}}},\n'
            "    timeout=30,\n)\nresponse.raise_for_status()\n"
            'for p in response.json()["predictions"]:\n'
            '    print(p["label"], round(p["score"], 3))'
        )
    else:
        curl = (
            f"curl -X POST {url} \\\n"
            '  -H "Authorization: Bearer $TRAINYARD_API_KEY" \\\n'
            "  -F files=@photo.png"
        )
        python = (
            "import os\nimport requests\n\n"
            'with open("photo.png", "rb") as fh:\n'
            "    response = requests.post(\n"
            f'        "{url}",\n'
            '        headers={"Authorization": f"Bearer {os.environ[\'TRAINYARD_API_KEY\']}"},\n'
            '        files=[("files", fh)],\n'
            "        timeout=30,\n    )\nresponse.raise_for_status()\n"
            'print(response.json()["predictions"][0])'
        )
    return {"curl": curl, "python": python, "url": url}


def prediction_result(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The first prediction of a ``prediction_create`` answer, for the try-it box.

    Args:
        answer: ``{"predictions": [{"label", "score", "scores": {label: p}}], "usage": {...}}``.

    Returns:
        ``{"label", "score", "scores": [(label, p)] most likely first, "inference_ms"}``
        (``inference_ms`` is ``None`` when the usage does not say).
    """
    pred = answer["predictions"][0]
    return {
        "label": pred["label"],
        "score": pred["score"],
        "scores": sorted(pred["scores"].items(), key=lambda kv: -kv[1]),
        "inference_ms": (answer.get("usage") or {}).get("inference_ms"),
    }


# --- usage ------------------------------------------------------------------------------------


def days_between(start: datetime.date, end: datetime.date) -> list[str]:
    """ISO dates from ``start`` to ``end`` inclusive (empty when ``end`` is before ``start``)."""
    return [(start + datetime.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def usage_series(
    rows: Iterable[Mapping[str, Any]], *, start: datetime.date, today: datetime.date
) -> list[dict[str, Any]]:
    """Usage per meter and day, one series per meter for the billing page's charts.

    Args:
        rows: ``[{"meter", "unit", "date": ISO date, "quantity": number}]`` (as
            ``usage_by_meter_and_day`` returns them); rows dated outside ``start..today`` are
            ignored, several rows of one meter and day are added up.
        start: the first day of the period (UTC).
        today: the last day shown (UTC).

    Returns:
        ``[{"meter", "unit", "title", "days", "values", "total", "rows"}]`` sorted by meter:
        ``days`` every ISO date from ``start`` to ``today``, ``values`` the float quantity of
        each day (0.0 when nothing was used), ``total`` their sum as a ``Decimal``, ``rows``
        ``[(day, quantity)]`` for the days with usage (the chart's table), ``title`` the
        chart's title. A meter appears only when it has at least one row.
    """
    days = days_between(start, today)
    by_meter: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = by_meter.setdefault(r["meter"], {"unit": r["unit"], "values": dict.fromkeys(days, 0.0)})
        if r["date"] in m["values"]:
            m["values"][r["date"]] += float(r["quantity"])
    out = []
    for meter, m in sorted(by_meter.items()):
        values = [m["values"][d] for d in days]
        out.append(
            {
                "meter": meter,
                "unit": m["unit"],
                "title": f"{meter_label(meter)} per day",
                "days": days,
                "values": values,
                "total": quantity_total(values),
                "rows": [(d, v) for d, v in zip(days, values, strict=True) if v],
            }
        )
    return out
