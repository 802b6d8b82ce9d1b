"""The layer rules of DESIGN §5 hold, and the control plane loads no TensorFlow.

The rules themselves are import-linter contracts in ``pyproject.toml`` (``[tool.importlinter]``),
also run by ``make lint``; this test keeps them in ``make test`` too. The TensorFlow check is a
fresh interpreter that loads what the web process loads (settings, every app, the admin, the
whole URL configuration, the Celery app), so a module-level ``import tensorflow`` anywhere on
that path, direct or through a dependency, fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ML_PACKAGES = ("tensorflow", "tf_keras", "tensorflow_hub", "keras")


def _lint_imports() -> str:
    """The ``lint-imports`` of this interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("lint-imports")
    found = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert found, "lint-imports is not installed (requirements/dev.lock has import-linter)"
    return found


def test_the_import_contracts_are_kept():
    proc = subprocess.run(
        [_lint_imports(), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = re.search(r"Contracts: (\d+) kept, (\d+) broken", out)
    assert summary, out
    # The five contracts of DESIGN §5 (layers; contract pure; saas without workers and TF;
    # workers.ml pure; only saas.urls imports the HTTP layers), none of them dropped.
    assert int(summary[1]) >= 5 and summary[2] == "0", out


PROBE = f"""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
import saas.wsgi  # django.setup(): every installed app, its models and admin
import saas.urls
from django.urls import get_resolver
get_resolver().url_patterns  # loads every include()d URLconf, so every view module
import saas.celery
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {ML_PACKAGES!r})
print(json.dumps({{"ml": loaded, "modules": sorted(sys.modules)}}))
"""


def test_the_web_process_loads_no_tensorflow():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    # Not vacuous: the API views, the dashboard pages and the admin were really imported.
    assert {"saas.api.v1.training_jobs", "saas.dashboard.urls", "saas.billing.admin"} <= set(
        report["modules"]
    )
    assert report["ml"] == [], f"the web process imported {report['ml'][:5]}"
