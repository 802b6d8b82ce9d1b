"""saas/contract imports nothing of the project but itself, and no Django."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import saas.contract

CONTRACT = Path(saas.contract.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_contract_imports_only_the_standard_library_and_itself():
    files = sorted(CONTRACT.glob("*.py"))
    assert {f.name for f in files} >= {"datasets.py", "hyperparameters.py", "spec.py"}
    for path in files:
        for name in _imports(path):
            top = name.split(".")[0]
            ok = name.startswith("saas.contract") or top in sys.stdlib_module_names
            assert ok, f"{path.name} imports {name}"
