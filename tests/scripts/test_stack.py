"""``Stack.stop`` (scripts/stack.py): every child's whole process group ends, whatever signals
arrive during the shutdown. Real processes: a child that ignores SIGTERM, and one that exits on
it but leaves a grandchild that ignores it (as a Celery pool child can outlive its parent)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from scripts.stack import Stack

# Prints its pid, then lives on whatever SIGTERM says; with "fork", a grandchild of the same
# process group does so while the parent exits on SIGTERM.
CHILD = r"""
import os, signal, sys, time
if sys.argv[1] == "fork":
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(os.getpid(), flush=True)
        while True:
            time.sleep(1)
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(os.getpid(), flush=True)
while True:
    time.sleep(1)
"""


class Interrupted(Exception):
    pass


def _interrupt(signum, frame):
    raise Interrupted  # what scripts/run.py's handler does with a stop signal


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _pids(log_dir, name: str, count: int) -> list[int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = (log_dir / f"{name}.log").read_text().split()
        if len(lines) >= count:
            return [int(x) for x in lines[:count]]
        time.sleep(0.05)
    raise AssertionError(f"{name} did not start")


def test_stop_kills_every_group_through_repeated_signals(tmp_path):
    stack = Stack(env={}, log_dir=tmp_path)
    stack._spawn("stubborn", [sys.executable, "-c", CHILD, "stay"])
    stack._spawn("orphaning", [sys.executable, "-c", CHILD, "fork"])
    pids = _pids(tmp_path, "stubborn", 1) + _pids(tmp_path, "orphaning", 2)

    def signal_me_twice():
        for delay in (0.2, 0.3):
            time.sleep(delay)
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, _interrupt)
    sender = threading.Thread(target=signal_me_twice)
    try:
        sender.start()
        t0 = time.monotonic()
        stack.stop(grace=1.0)  # an Interrupted escaping here is the bug
        took = time.monotonic() - t0
        sender.join()
    finally:
        signal.signal(signal.SIGTERM, previous)
        for pid in pids:  # whatever happened, nothing outlives the test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert [pid for pid in pids if _alive(pid)] == []
    assert 1.0 <= took < 10, took  # SIGTERM was not enough: SIGKILL after the grace period
    assert stack.procs == {}
    # The handler in place before the stop is back: the deferral lasted the shutdown only.
    assert signal.getsignal(signal.SIGTERM) is previous


def test_stop_returns_at_once_when_every_group_obeys_sigterm(tmp_path):
    stack = Stack(env={}, log_dir=tmp_path)
    proc = stack._spawn("polite", [sys.executable, "-c", "import time; time.sleep(60)"])
    t0 = time.monotonic()
    stack.stop(grace=20.0)
    assert time.monotonic() - t0 < 5
    assert proc.returncode == -signal.SIGTERM
