"""The dashboard's pure presenters: plain values in, plain values out, no database."""

from __future__ import annotations

import datetime
import json
import re
from decimal import Decimal

import pytest
from django.template import Context, Template

from saas.dashboard import presenters as p

# --- errors and forms -------------------------------------------------------------------------


def test_problem_list_keeps_only_entries_with_a_message_in_order():
    errors = [
        {"field": "a", "message": "first"},
        {"field": "b", "message": ""},
        {"field": "c"},
        {"field": None, "message": "second", "line": 4},
    ]
    assert p.problem_list(errors) == [
        {"field": "a", "message": "first"},
        {"field": None, "message": "second", "line": 4},
    ]


@pytest.mark.parametrize("errors", [None, []])
def test_problem_list_of_nothing_is_empty(errors):
    assert p.problem_list(errors) == []


def test_problem_list_returns_copies():
    errors = [{"field": "a", "message": "m"}]
    out = p.problem_list(errors)
    out[0]["message"] = "changed"
    assert errors == [{"field": "a", "message": "m"}]


def test_form_problems_join_the_messages_of_a_field():
    errors = {"epochs": ["Too many.", "Whole numbers only."], "dataset": ["Required."]}
    assert p.form_problems(errors) == [
        {"field": "epochs", "message": "Too many. Whole numbers only."},
        {"field": "dataset", "message": "Required."},
    ]
    assert p.form_problems({}) == []


def test_split_field_problems_maps_hyperparameter_paths_to_form_fields():
    on_fields, rest = p.split_field_problems(
        [
            {"field": "hyperparameters.epochs", "message": "at most 50"},
            {"field": "base_model", "message": "unknown"},
            {"field": "hyperparameters.dropout", "message": "not accepted"},
            {"field": None, "message": "quota"},
        ],
        fields=["epochs", "base_model", "dataset"],
        fallback="Invalid request.",
    )
    assert on_fields == [("epochs", "at most 50"), ("base_model", "unknown")]
    assert rest == [
        {"field": "hyperparameters.dropout", "message": "not accepted"},
        {"field": None, "message": "quota"},
    ]


def test_split_field_problems_falls_back_to_the_summary_when_every_problem_is_on_a_field():
    on_fields, rest = p.split_field_problems(
        [{"field": "epochs", "message": "at most 50"}], fields={"epochs": None}, fallback="Nope."
    )
    assert on_fields == [("epochs", "at most 50")]
    assert rest == [{"field": None, "message": "Nope."}]
    assert p.split_field_problems([], fields=[], fallback="Nope.") == (
        [],
        [{"field": None, "message": "Nope."}],
    )


# --- offending CSV lines ----------------------------------------------------------------------


def test_offending_lines_attach_the_raw_line_and_strip_the_line_prefix():
    data = b"text,label\r\nfine,a\r\n,\r\nlast,b\n"
    out = p.offending_lines(
        data,
        [
            {"field": None, "message": "line 3: the text is empty", "line": 3},
            {"field": "label", "message": "only one class"},
        ],
    )
    assert out == [
        {"field": None, "message": "the text is empty", "line": 3, "text": ","},
        {"field": "label", "message": "only one class", "text": None},
    ]


def test_offending_lines_without_line_numbers_are_returned_unchanged():
    problems = [{"field": None, "message": "line 2: x"}, {"message": "y", "line": "2"}]
    assert p.offending_lines(b"a\nb\n", problems) == problems


def test_offending_lines_truncate_long_lines_and_replace_bad_bytes():
    long = b"\xff" + b"x" * 500
    out = p.offending_lines(b"h\n" + long + b"\n", [{"message": "line 2: bad", "line": 2}])
    assert out[0]["text"] == "\ufffd" + "x" * (p.OFFENDING_LINE_CHARS - 1)
    assert len(out[0]["text"]) == p.OFFENDING_LINE_CHARS


def test_offending_lines_past_the_end_of_the_file_have_no_text():
    out = p.offending_lines(b"only\n", [{"message": "line 9: gone", "line": 9}])
    assert out == [{"message": "gone", "line": 9, "text": None}]
    assert p.offending_lines(b"", [{"message": "line 1: x", "line": 1}])[0]["text"] is None


def test_offending_lines_keep_a_message_naming_another_line():
    out = p.offending_lines(b"a\nb\n", [{"message": "line 1: see line 2", "line": 2}])
    assert out == [{"message": "line 1: see line 2", "line": 2, "text": "b"}]


# --- numbers ----------------------------------------------------------------------------------


def test_count_has_thousands_separators():
    assert p.count(0) == "0"
    assert p.count(999) == "999"
    assert p.count(3000) == "3,000"
    assert p.count(1234567) == "1,234,567"


def test_quantity_total():
    assert p.quantity_total([]) == Decimal("0")
    assert str(p.quantity_total([0.0, 0.0])) == "0"
    assert str(p.quantity_total([1.25, 1.25])) == "2.5"
    assert str(p.quantity_total([0.5])) == "0.5"
    # The float's shortest repr, not its binary expansion.
    assert p.quantity_total([0.1]) == Decimal("0.1")
    assert p.quantity_total([120.0]) == Decimal(120)


def test_a_whole_quantity_total_prints_in_fixed_point_on_a_page():
    # normalize() makes 120 into 1.2E+2; the billing page must still read "120".
    total = p.quantity_total([100.0, 20.0])
    assert Template("{{ t }} unit{{ t|pluralize }}").render(Context({"t": total})) == "120 units"


@pytest.mark.parametrize(
    ("total", "cap", "percent"),
    [
        (Decimal("5"), None, None),
        (Decimal("5"), Decimal("0"), None),
        (Decimal("0"), Decimal("10"), 0),
        (Decimal("2.50"), Decimal("10"), 25),
        (Decimal("9.99"), Decimal("10"), 99),  # truncated, never rounded up to "full"
        (Decimal("10"), Decimal("10"), 100),
        (Decimal("35"), Decimal("10"), 100),
    ],
)
def test_cap_percent(total, cap, percent):
    assert p.cap_percent(total, cap) == percent


# --- overview and datasets --------------------------------------------------------------------


def test_getting_started_steps_in_order_with_done_and_allowed():
    steps = p.getting_started_steps(
        has_dataset=True,
        has_job=False,
        has_model=False,
        has_key=True,
        can_upload=True,
        can_train=False,
        can_predict=True,
        can_create_key=False,
    )
    assert steps == [
        ("Upload a labelled dataset", True, "dashboard:dataset_new", True),
        ("Train a model", False, "dashboard:job_new", False),
        ("Try it in the browser", False, "dashboard:models", True),
        ("Create an API key", True, "dashboard:keys", False),
    ]


def test_class_rows_largest_first_ties_by_label():
    assert p.class_rows({"b": 2, "a": 2, "c": 9, "d": 1}) == [
        ("c", 9),
        ("a", 2),
        ("b", 2),
        ("d", 1),
    ]
    assert p.class_rows({}) == []
    assert p.class_rows({"only": 3}) == [("only", 3)]


def test_thumbnails_are_numbered_in_order():
    assert p.thumbnails([("cat/1.png", "cat"), ("dog/7.jpg", "dog")]) == [
        {"n": 0, "label": "cat", "name": "cat/1.png"},
        {"n": 1, "label": "dog", "name": "dog/7.jpg"},
    ]
    assert p.thumbnails([]) == []


# --- training jobs ----------------------------------------------------------------------------


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
        "heat_labels": [],
        "heat": [],
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


# --- models -----------------------------------------------------------------------------------


def test_text_snippets_call_this_host_with_a_json_body():
    s = p.snippets(base_url="http://localhost:8000", model_id="mdl_abc", task="text-classification")
    url = "http://localhost:8000/v1/models/mdl_abc/predict"
    assert s["url"] == url
    assert s["curl"].startswith(f"curl -X POST {url} \\\n")
    assert '-H "Authorization: Bearer $TRAINYARD_API_KEY"' in s["curl"]
    assert '-H "Content-Type: application/json"' in s["curl"]
    body = re.search(r"-d '(.*)'$", s["curl"]).group(1)
    assert json.loads(body) == {"inputs": ["I love it, works great", "Broke after a week"]}
    assert f'"{url}"' in s["python"] and "json=" in s["python"]
    compile(s["python"], "snippet", "exec")  # the snippet is valid Python


def test_image_snippets_upload_a_file():
    s = p.snippets(base_url="https://ty.example", model_id="mdl_x", task="image-classification")
    assert s["url"] == "https://ty.example/v1/models/mdl_x/predict"
    assert s["curl"].endswith("-F files=@photo.png")
    assert "Content-Type" not in s["curl"]
    assert 'files=[("files", fh)]' in s["python"]
    compile(s["python"], "snippet", "exec")


def test_prediction_result_sorts_scores_most_likely_first():
    answer = {
        "predictions": [
            {"label": "b", "score": 0.7, "scores": {"a": 0.1, "b": 0.7, "c": 0.2}},
            {"label": "a", "score": 0.9, "scores": {"a": 0.9, "b": 0.05, "c": 0.05}},
        ],
        "usage": {"predictions": 1, "inference_ms": 12},
    }
    assert p.prediction_result(answer) == {
        "label": "b",
        "score": 0.7,
        "scores": [("b", 0.7), ("c", 0.2), ("a", 0.1)],
        "inference_ms": 12,
    }
    one_class = {"predictions": [{"label": "x", "score": 1.0, "scores": {"x": 1.0}}]}
    assert p.prediction_result(one_class)["inference_ms"] is None
    assert p.prediction_result(one_class)["scores"] == [("x", 1.0)]


# --- usage ------------------------------------------------------------------------------------

START = datetime.date(2026, 3, 1)


def test_days_between_is_inclusive():
    assert p.days_between(START, START) == ["2026-03-01"]
    assert p.days_between(START, datetime.date(2026, 3, 3)) == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    assert p.days_between(START, datetime.date(2026, 2, 28)) == []


def test_usage_series_with_zero_usage_is_empty():
    assert p.usage_series([], start=START, today=datetime.date(2026, 3, 10)) == []


def test_usage_series_one_series_per_meter_with_every_day():
    rows = [
        {"meter": "predictions", "unit": "prediction", "date": "2026-03-02", "quantity": 3},
        {"meter": "predictions", "unit": "prediction", "date": "2026-03-02", "quantity": 2},
        {"meter": "predictions", "unit": "prediction", "date": "2026-02-28", "quantity": 99},
        {
            "meter": "storage_gb_hours",
            "unit": "GB-hour",
            "date": "2026-03-01",
            "quantity": Decimal("0.125"),
        },
        {"meter": "a_new_meter", "unit": "thing", "date": "2026-03-03", "quantity": 0},
    ]
    out = p.usage_series(rows, start=START, today=datetime.date(2026, 3, 3))
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert out == [
        {
            "meter": "a_new_meter",
            "unit": "thing",
            "title": "a_new_meter per day",  # an unknown meter keeps its code
            "days": days,
            "values": [0.0, 0.0, 0.0],
            "total": Decimal("0"),
            "rows": [],
        },
        {
            "meter": "predictions",
            "unit": "prediction",
            "title": "Predictions per day",
            "days": days,
            "values": [0.0, 5.0, 0.0],  # same day added up; the day before the period ignored
            "total": Decimal("5"),
            "rows": [("2026-03-02", 5.0)],
        },
        {
            "meter": "storage_gb_hours",
            "unit": "GB-hour",
            "title": "Storage (GB-hours) per day",
            "days": days,
            "values": [0.125, 0.0, 0.0],
            "total": Decimal("0.125"),
            "rows": [("2026-03-01", 0.125)],
        },
    ]
