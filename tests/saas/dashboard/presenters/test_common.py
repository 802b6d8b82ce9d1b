"""The dashboard's common presenters (errors, forms, numbers): plain values in, plain values
out, no database."""

from __future__ import annotations

import pytest

from saas.dashboard import presenters as p


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


def test_count_has_thousands_separators():
    assert p.count(0) == "0"
    assert p.count(999) == "999"
    assert p.count(3000) == "3,000"
    assert p.count(1234567) == "1,234,567"
