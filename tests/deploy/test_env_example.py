""".env.example documents every environment variable Trainyard reads, once, with its defaults.

Sources: ``env(...)`` calls in saas/settings.py, and ``os.environ`` / ``os.getenv`` reads (and
the module helpers built on them, such as serve/config.py's ``_int``) in serve/, workers/ and
scripts/stack.py, all found with ``ast`` so a new variable cannot be missed by a hand list.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import environ
import pytest

from scripts.stack import training_recycling_flags
from serve.config import ServeConfig
from workers.ml import model_cache

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / ".env.example"

# Read in serve/ or workers/ but not deployment configuration, so not in .env.example.
NOT_DEPLOYMENT_CONFIG = {
    # Django's own pointer to the settings module; always saas.settings, set with setdefault.
    "DJANGO_SETTINGS_MODULE": "always saas.settings",
    # TensorFlow's own variables, pinned by the code with setdefault: the legacy Keras the
    # SavedModels are written with, quiet C++ logs, and intra-op threads, which come from
    # TRAINYARD_SERVE_TF_THREADS (documented).
    "TF_USE_LEGACY_KERAS": "required by the model format",
    "TF_CPP_MIN_LOG_LEVEL": "TensorFlow's log noise",
    "TF_NUM_INTRAOP_THREADS": "set from TRAINYARD_SERVE_TF_THREADS",
}
# `NAME=value`, or a commented-out `# NAME=` (the default kept).
_VARIABLE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@cache
def _settings_env_names() -> frozenset[str]:
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
    return frozenset(names)


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def _module_env_reads(path: Path) -> set[str]:
    """Variable names one module reads from the process environment.

    Counted: ``os.environ.get/setdefault(NAME)``, ``os.environ[NAME]`` (read), ``os.getenv``,
    the same on a local alias of ``os.environ`` (scripts/stack.py's ``source``), and calls to
    a function of the module that passes its first parameter to one of those (serve/config.py's
    ``_int``/``_float``). NAME is a string literal or a module-level string constant
    (workers/ml/model_cache.py's ``MAX_BYTES_ENV``); f-strings are not followed.
    """
    tree = ast.parse(path.read_text())
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    # A name bound to an expression that mentions os.environ stands for it.
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            if any(_is_os_environ(n) for n in ast.walk(node.value)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                aliases |= {t.id for t in targets if isinstance(t, ast.Name)}

    def is_environ(node: ast.AST) -> bool:
        return _is_os_environ(node) or (isinstance(node, ast.Name) and node.id in aliases)

    def key_args(node: ast.AST) -> Iterator[ast.AST]:
        """The key expression of each environment read in ``node``'s subtree."""
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and n.args:
                f = n.func
                if isinstance(f, ast.Attribute) and f.attr in ("get", "setdefault", "pop"):
                    if is_environ(f.value):
                        yield n.args[0]
                if isinstance(f, ast.Attribute) and f.attr == "getenv":
                    if isinstance(f.value, ast.Name) and f.value.id == "os":
                        yield n.args[0]
            if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Load):
                if is_environ(n.value):
                    yield n.slice

    readers = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.args.args:
            first_param = node.args.args[0].arg
            if any(isinstance(k, ast.Name) and k.id == first_param for k in key_args(node)):
                readers.add(node.name)

    def resolve(key: ast.AST) -> str | None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        if isinstance(key, ast.Name):
            return constants.get(key.id)
        return None

    names = {name for k in key_args(tree) if (name := resolve(k))}
    for n in ast.walk(tree):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in readers:
            if n.args and (name := resolve(n.args[0])):
                names.add(name)
    return names


@cache
def _process_env_names() -> frozenset[str]:
    """Environment variables read in serve/, workers/ and scripts/stack.py, less the ones
    that are not deployment configuration (NOT_DEPLOYMENT_CONFIG)."""
    files = [*(ROOT / "serve").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]
    files.append(ROOT / "scripts" / "stack.py")
    names: set[str] = set()
    for path in files:
        names |= _module_env_reads(path)
    return frozenset(names - NOT_DEPLOYMENT_CONFIG.keys())


def _example_lines() -> list[tuple[str, bool, str]]:
    """(name, commented_out, value) per variable line of .env.example, in file order."""
    out = []
    for line in EXAMPLE.read_text().splitlines():
        m = _VARIABLE.match(line)
        if m:
            out.append((m.group(2), bool(m.group(1)), m.group(3)))
    return out


def _example_names() -> set[str]:
    return {name for name, _, _ in _example_lines()}


def _example_values() -> dict[str, str]:
    """The variables .env.example sets (its uncommented lines), parsed by django-environ's own
    .env reader, as settings.py reads a .env copied from it."""

    class Capture(environ.Env):
        ENVIRON: dict[str, str] = {}  # read_env writes here instead of os.environ

    Capture.read_env(EXAMPLE)
    return dict(Capture.ENVIRON)


def test_settings_reads_variables_found_by_the_parser() -> None:
    names = _settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "TRAINYARD_S3_BUCKET"} <= names


def test_process_env_parser_finds_each_kind_of_read() -> None:
    names = _process_env_names()
    assert {
        "TRAINYARD_SERVE_MAX_BATCH",  # serve/config.py's _int helper
        "TRAINYARD_SERVE_BATCHING",  # os.environ.get
        "TRAINYARD_SERVE_HOST",  # os.environ.get in serve/__main__.py
        "TRAINYARD_MODEL_CACHE_DISK_BYTES",  # through a module constant
        "TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD",  # through scripts/stack.py's alias
        "REDIS_URL",
    } <= names
    assert not names & NOT_DEPLOYMENT_CONFIG.keys()


def test_every_settings_variable_is_in_env_example() -> None:
    missing = sorted(_settings_env_names() - _example_names())
    assert missing == [], f"add to .env.example: {missing}"


def test_every_serve_and_worker_variable_is_in_env_example() -> None:
    missing = sorted(_process_env_names() - _example_names())
    assert missing == [], (
        f"add to .env.example (or to NOT_DEPLOYMENT_CONFIG, saying why): {missing}"
    )


def test_no_variable_is_listed_twice() -> None:
    counts = Counter(name for name, _, _ in _example_lines())
    assert [name for name, n in counts.items() if n > 1] == []


def test_every_variable_has_a_comment_that_ends_a_sentence() -> None:
    # A cheap guard against comments cut off mid-sentence: the comment line right above each
    # variable ends with a full stop (or ?/!), optionally inside a closing bracket or quote.
    lines = EXAMPLE.read_text().splitlines()
    bad = []
    for i, line in enumerate(lines):
        if not _VARIABLE.match(line):
            continue
        above = lines[i - 1] if i else ""
        if not above.startswith("#") or _VARIABLE.match(above):
            bad.append(f"{line!r}: no comment of its own")
        elif not re.search(r"[.?!][)\"'`]?$", above.rstrip()):
            bad.append(f"{line!r}: comment ends {above[-30:]!r}")
    assert bad == []


def _settings_snapshot(tmp_path: Path, overrides: dict[str, str]) -> dict[str, str]:
    """repr() of every upper-case name saas.settings defines, imported in a fresh interpreter
    whose environment has none of the documented variables except ``overrides``."""
    documented = _example_names() | _settings_env_names()
    env = {k: v for k, v in os.environ.items() if k not in documented}
    env.update(overrides)
    env["TRAINYARD_VAR_DIR"] = str(tmp_path)  # commented out in the example; same in both runs
    code = (
        "import json, saas.settings as s; "
        "print(json.dumps({k: repr(getattr(s, k)) for k in dir(s) if k.isupper()}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_values_written_out_are_the_settings_defaults(tmp_path: Path) -> None:
    # Copying .env.example to .env must change nothing until a value is edited: each `NAME=value`
    # line holds the default, so settings with all of them set equal settings with none.
    if (ROOT / ".env").exists():
        pytest.skip("a .env in the repository root would be read by both imports")
    values = {k: v for k, v in _example_values().items() if k in _settings_env_names()}
    assert "DEBUG" in values and "TRAINYARD_HUB_HANDLES" in values
    defaults = _settings_snapshot(tmp_path, {})
    with_example = _settings_snapshot(tmp_path, values)
    changed = {k: (defaults.get(k), v) for k, v in with_example.items() if defaults.get(k) != v}
    assert changed == {}


def test_values_written_out_are_the_data_plane_and_worker_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {k: v for k, v in _example_values().items() if k in _process_env_names()}
    assert "TRAINYARD_SERVE_MAX_BATCH" in values
    for name in _process_env_names():
        monkeypatch.delenv(name, raising=False)
    defaults = ServeConfig.from_env()
    disk_default = model_cache.disk_max_bytes()
    flags_default = training_recycling_flags({})
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert ServeConfig.from_env() == defaults
    assert int(os.environ[model_cache.MAX_BYTES_ENV]) == model_cache.DEFAULT_MAX_BYTES
    assert model_cache.disk_max_bytes() == disk_default
    assert training_recycling_flags(dict(os.environ)) == flags_default
