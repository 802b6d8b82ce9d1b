"""`make run`'s shutdown: repeated stop signals to its process group end every child.

A supervisor, ``timeout`` or a container runtime signals the whole process group, and ``make``
forwards the same signal to ``scripts/run.py`` again; a Ctrl-C pressed twice does the same. The
stack used to turn the second one into a KeyboardInterrupt inside its own shutdown and leave
Celery workers running. Here the real ``scripts/run.py`` runs in a process group of its own
(web, data plane, two workers with their pool children and beat), is signalled three times
(twice in quick succession, once more mid-shutdown), and every process it started must be gone
within a bound.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from scripts.stack import ROOT, STOP_GRACE_SECONDS, STOP_KILL_WAIT_SECONDS, free_port

# The django_db mark makes pytest-django create the test database the stack runs on.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

START_TIMEOUT = 240  # two shared cores: gunicorn, the data plane and two Celery workers import
# Stack.stop's own bound, plus slack for the interpreter's exit on a loaded machine.
STOP_BOUND = STOP_GRACE_SECONDS + STOP_KILL_WAIT_SECONDS + 15


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid`` from /proc, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return fields[0], int(fields[1])


def _descendants(root: int) -> set[int]:
    """Every live process below ``root`` (by parent pid), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                children.setdefault(stat[1], []).append(int(entry))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has ended; only its reaping is due


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> list[str]:
    """Read ``proc``'s stdout until a line contains ``needle``; fails on exit or timeout."""
    import selectors

    lines: list[str] = []
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if sel.select(timeout=1):
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [line.decode(errors="replace") for line in done]
            if any(needle in line for line in lines):
                return lines
        if proc.poll() is not None:
            break
    raise AssertionError(f"run.py did not print {needle!r} (exit {proc.poll()}): {lines}")


@pytest.fixture
def run_py(django_db_setup, tmp_path):
    """``scripts/run.py`` on the test database, this session's Redis and a free port, in a
    session (process group) of its own. Killed outright at teardown whatever happened."""
    from django.db import connection

    db = connection.settings_dict  # the test database pytest-django created
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "PORT": str(free_port()),
        "TRAINYARD_RUN_LOG_DIR": str(tmp_path / "logs"),
        "TRAINYARD_STORAGE_DIR": str(tmp_path / "storage"),
        "TRAINYARD_MODEL_CACHE_DIR": str(tmp_path / "model-cache"),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "scripts/run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    started: set[int] = set()
    yield proc, started
    for pid in [proc.pid, *started]:  # nothing of a failed run may outlive the test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def test_repeated_sigterm_to_the_group_ends_every_child(run_py):
    proc, started = run_py
    _wait_for_line(proc, "Ctrl-C to stop.", START_TIMEOUT)
    # The workers' pool children and beat appear shortly after the worker itself.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        started |= _descendants(proc.pid)
        if len(started) >= 8:  # web + 2 gunicorn workers, serve, 2 workers + pool + beat
            break
        time.sleep(0.5)
    assert len(started) >= 8, f"expected the whole stack below run.py, found {started}"

    pgid = os.getpgid(proc.pid)
    os.killpg(pgid, signal.SIGTERM)
    time.sleep(0.05)
    os.killpg(pgid, signal.SIGTERM)  # what make forwards, or an impatient supervisor
    time.sleep(1.0)
    os.killpg(pgid, signal.SIGTERM)  # and once more while the stack is shutting down

    t0 = time.monotonic()
    proc.wait(timeout=STOP_BOUND)
    while any(_alive(pid) for pid in started) and time.monotonic() - t0 < STOP_BOUND:
        time.sleep(0.1)
    left = sorted(pid for pid in started if _alive(pid))
    print(f"\n{len(started)} processes below run.py, all gone {time.monotonic() - t0:.1f} s after")
    assert left == [], f"still running {time.monotonic() - t0:.1f} s after the stop: {left}"
    assert proc.returncode == 0, proc.stdout.read().decode(errors="replace")[-2000:]
