"""Every environment variable saas/settings.py reads is documented in .env.example."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _settings_env_names() -> set[str]:
    """Names passed as the first argument to env(...) / env.<cast>(...) in settings.py."""
    tree = ast.parse((ROOT / "saas" / "settings.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        is_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == "env"
        )
        first = node.args[0]
        if is_env and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def _example_names() -> set[str]:
    # `NAME=value` or a commented-out `# NAME=` (the default kept).
    text = (ROOT / ".env.example").read_text()
    return set(re.findall(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def test_settings_reads_variables_found_by_the_parser() -> None:
    names = _settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TRAINYARD_S3_BUCKET"} <= names


def test_every_settings_variable_is_in_env_example() -> None:
    missing = sorted(_settings_env_names() - _example_names())
    assert missing == [], f"add to .env.example: {missing}"
