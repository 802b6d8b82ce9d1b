"""The ML contract's names are written once, in ``saas.contract``: the control plane and the
workers use its constants (task names) and its table (the core hyperparameters), so a rename
there cannot leave a stale copy behind."""

from __future__ import annotations

import ast
import pathlib

from saas.contract import HYPERPARAMETERS, TASKS
from saas.dashboard.forms import CORE_NUMBER_HYPERPARAMETERS, TrainingForm

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _string_constants(path: pathlib.Path):
    """``(line, value)`` of every string literal in ``path`` except docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                yield node.lineno, node.value


def _project_modules():
    for top in ("saas", "workers"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT)
            # The contract is where the names live; migrations are frozen history.
            if rel.parts[:2] == ("saas", "contract") or "migrations" in rel.parts:
                continue
            yield rel, path


def test_no_task_name_literal_outside_the_contract():
    found = [
        f"{rel}:{line}: {value!r}"
        for rel, path in _project_modules()
        for line, value in _string_constants(path)
        if value in TASKS
    ]
    assert found == []


def test_no_tuple_of_core_hyperparameter_names_outside_the_contract():
    """A literal tuple or list naming two or more hyperparameters is a second copy of the
    contract's table (reading one key, ``hp["epochs"]``, is not)."""
    names = set(HYPERPARAMETERS)
    found = []
    for rel, path in _project_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                named = {
                    e.value
                    for e in node.elts
                    if isinstance(e, ast.Constant) and isinstance(e.value, str)
                }
                if len(named & names) >= 2:
                    found.append(f"{rel}:{node.lineno}: {sorted(named & names)}")
    assert found == []


def test_the_training_form_offers_the_contracts_core_numeric_hyperparameters():
    core_numbers = [
        name for name, h in HYPERPARAMETERS.items() if h.core and h.type in (int, float)
    ]
    assert list(CORE_NUMBER_HYPERPARAMETERS) == core_numbers
    assert core_numbers == ["epochs", "batch_size", "learning_rate", "validation_split"]
    form = TrainingForm()
    assert list(form.fields) == [
        "dataset",
        "base_model",
        *core_numbers,
        "fine_tune",
        "seed",
    ]
    for name in core_numbers:
        field, h = form.fields[name], HYPERPARAMETERS[name]
        assert (field.min_value, field.max_value) == (h.minimum, h.maximum)
        assert field.help_text == h.help_text() + "."
    assert [f.label for f in form.hyperparameter_fields] == [
        "Epochs",
        "Batch size",
        "Learning rate",
        "Validation split",
    ]
