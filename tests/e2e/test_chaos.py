"""`make chaos` in its short mode (``CHAOS_SHORT=1``): the whole stack under faults.

The harness (``scripts/chaos.py``) runs on a private PostgreSQL cluster and Redis of its own
(free ports, files under ``var/chaos/<run>/``), so it touches neither the test database nor the
shared Redis: 3 tenants, a few short trainings and a prediction stream while training workers
and their pool children, both data-plane replicas, Redis and PostgreSQL are killed. This test
runs it and asserts every row of its table of checks (read from its JSON report).

``PENDING`` names the checks that current code is known to fail, each with the branch whose
work makes it pass; the test then ends xfail (not pass) after every other check has been
asserted. Empty it when that work is merged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from scripts.stack import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.tf]

# check name prefix -> why it fails on current code
PENDING: dict[str, str] = {}
CHECKS = {
    "every job terminal",
    "exactly one model per succeeded job",
    "usage events match succeeded jobs exactly",
    "platform failures unbilled",
    "every answered prediction metered exactly once",
    "no 5xx but 503",
    "no 4xx to valid requests",
    "killed jobs resume from their last epoch",
    "faults injected",
    "training pool child RSS",
    "data-plane replica RSS",
}


@pytest.mark.timeout(900)
def test_short_chaos_run_passes_its_checks(tmp_path):
    report = tmp_path / "report.json"
    env = {
        **os.environ,
        "CHAOS_SHORT": "1",
        "CHAOS_REPORT": str(report),
        "CHAOS_PG_PORT": str(free_port()),
        "CHAOS_REDIS_PORT": str(free_port()),
        "TF_USE_LEGACY_KERAS": "1",
    }
    proc = subprocess.run(
        [sys.executable, "scripts/chaos.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    out = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert report.exists(), f"no report (rc {proc.returncode}):\n{out}"
    checks = json.loads(report.read_text())["checks"]
    names = {c["name"] for c in checks}
    missing = [want for want in CHECKS if not any(n.startswith(want) for n in names)]
    assert not missing, f"checks not run: {missing}\n{out}"
    failed = [c for c in checks if not c["ok"]]
    hard = [c for c in failed if not any(c["name"].startswith(p) for p in PENDING)]
    assert not hard, "\n".join(f"{c['name']}: {c['detail']}" for c in hard) + "\n" + out
    if failed:
        assert proc.returncode == 1  # a failing check must fail `make chaos` too
        pytest.xfail(
            "; ".join(PENDING[p] for p in PENDING if any(c["name"].startswith(p) for c in failed))
        )
    assert proc.returncode == 0, out
