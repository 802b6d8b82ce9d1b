"""Start Trainyard's processes (web, data plane, workers) for `make run`, `make demo`, e2e tests.

Each process is a real OS process: gunicorn serving ``saas.wsgi`` (the control plane), the data
plane (``python -m serve``) and Celery workers from ``workers.celery_app``. Their output goes to
log files under the given directory.

One public base URL: the data plane listens on the public port and forwards every path it does
not answer itself to gunicorn on a private port (``serve --upstream``), the part nginx plays in
docker-compose. Without :meth:`Stack.start_serve`, gunicorn takes the public port itself.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"

#: How long :meth:`Stack.stop` waits after SIGTERM before it SIGKILLs what is left. Celery's
#: warm shutdown finishes the task in hand; a training task is ``acks_late``, so one killed
#: here is redelivered, not lost.
STOP_GRACE_SECONDS = 20.0
#: How long it then waits for SIGKILLed groups to empty (only the kernel can delay that).
STOP_KILL_WAIT_SECONDS = 10.0

_DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_deferred(*, replay: bool = False) -> Iterator[list[int]]:
    """Within the block, SIGINT, SIGTERM and SIGHUP are recorded (in the yielded list) instead
    of handled; the previous handlers come back afterwards. With ``replay`` the first signal
    recorded is then raised again for them (a signal during a spawn is handled once the child
    is registered, so the stop that follows knows it); without, nothing is replayed (the block
    is a shutdown: what the signals asked for is already happening).

    Handlers can only be set from the main thread; elsewhere this changes nothing. A Python
    handler rather than ``SIG_IGN``, since an ignored disposition would survive ``exec`` into
    any process started meanwhile."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, _frame: object) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in _DEFERRED_SIGNALS}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if replay and received:
        signal.raise_signal(received[0])


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # already empty (or its pid reused by someone else's group: not ours to signal)


def _group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a member (signal 0 checks without sending)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # the id now belongs to another user's group: ours is gone
    return True


# A training pool child grows with every TensorFlow job it runs (about 7 MiB per tiny text job
# after the ~725 MiB TensorFlow itself takes: bench/training_child_memory.py), so it is
# replaced after the task in which it passes this resident size (KiB), or after this many
# tasks. Makefile (`worker`) and docker-compose.yml use the same defaults and variables.
TRAINING_MAX_MEMORY_PER_CHILD_KIB = 1_048_576
TRAINING_MAX_TASKS_PER_CHILD = 100


def training_recycling_flags(env: Mapping[str, str] | None = None) -> list[str]:
    """Celery worker flags that recycle a training pool child (``--max-memory-per-child`` in
    KiB, ``--max-tasks-per-child``), from ``TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB`` and
    ``TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD`` in ``env`` (default: this process's) or the
    defaults above."""
    source: Mapping[str, str] = os.environ if env is None else env
    kib = (
        source.get("TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB")
        or TRAINING_MAX_MEMORY_PER_CHILD_KIB
    )
    tasks = source.get("TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD") or TRAINING_MAX_TASKS_PER_CHILD
    return ["--max-memory-per-child", str(int(kib)), "--max-tasks-per-child", str(int(tasks))]


def redis_url_or_exit() -> str:
    """``REDIS_URL``, or the local Redis (``LOCAL_REDIS_URL``) if it answers: the data plane
    keeps its admission counters and metering windows there, so ``make run`` and ``make demo``
    need one. Exits with a message saying so when there is none."""
    import redis

    url = os.environ.get("REDIS_URL") or LOCAL_REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(
            f"Redis is not reachable at {url} ({exc}). The data plane admits and meters "
            "predictions in Redis: start one (redis-server) or set REDIS_URL."
        ) from None
    return url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """A web server and workers sharing one environment.

    Args:
        env: extra environment (``DATABASE_URL``, ``REDIS_URL``, ``TRAINYARD_HUB_HANDLES``, …).
        log_dir: where ``web.log`` and ``worker-<name>.log`` go.
        port: the public port (a free one if None): the data plane's when it runs, else the
            web server's.
    """

    def __init__(self, *, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "saas.settings",
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **env,
        }
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.web_port = self.port
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen] = {}
        self._started: dict[str, tuple[list[str], dict[str, str]]] = {}  # for restart()

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        env = env if env is not None else self.env
        log = open(self.log_dir / f"{name}.log", "ab")
        # A stop signal between the fork and the bookkeeping would leave a child that stop()
        # does not know: it is handled once the child is in self.procs.
        with signals_deferred(replay=True):
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs[name] = proc
            self._started[name] = (argv, env)
        return proc

    def restart(self, name: str) -> subprocess.Popen:
        """Start ``name`` again as it was started last (after :meth:`kill`, or a crash)."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        argv, env = self._started[name]
        return self._spawn(name, argv, env)

    def manage(self, *args: str) -> str:
        """Run ``manage.py`` with the stack's environment; returns stdout (raises on failure)."""
        out = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{out.stderr}")
        return out.stdout.strip()

    def start_web(self, workers: int = 2, *, behind_serve: bool = True) -> None:
        """gunicorn on the public port, or with ``behind_serve`` on a private one for
        :meth:`start_serve` to forward to (call this first)."""
        if behind_serve:
            self.web_port = free_port()
            self.env["TRAINYARD_SERVE_URL"] = self.base_url
        self._spawn(
            "web",
            [
                str(BIN / "gunicorn"),
                "saas.wsgi",
                # The access-log redaction of tokens (gunicorn.conf.py), named so it holds
                # whatever the working directory.
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(workers),
                "--timeout",
                "120",
                "--access-logfile",
                "-",
            ],
        )

    def start_serve(
        self,
        *,
        extra_env: dict[str, str] | None = None,
        name: str = "serve",
        port: int | None = None,
        upstream: bool = True,
    ) -> subprocess.Popen:
        """The data plane, by default on the public port forwarding the rest to the web server
        (call :meth:`start_web` first). ``port`` (with ``name``, say ``serve-2``) starts another
        replica on a port of its own; ``upstream=False`` forwards nothing (no web server)."""
        if upstream and self.web_port == self.port:
            raise RuntimeError("start_web(behind_serve=True) first")
        argv = [
            str(BIN / "python"),
            "-m",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port or self.port),
        ]
        if upstream:
            argv += ["--upstream", f"http://127.0.0.1:{self.web_port}"]
        return self._spawn(name, argv, {**self.env, **(extra_env or {})})

    def start_worker(self, name: str, queues: str, *, beat: bool = False) -> subprocess.Popen:
        argv = [
            str(BIN / "celery"),
            "-A",
            "workers.celery_app",
            "worker",
            "-Q",
            queues,
            "-c",
            "1",
            "-n",
            f"{name}@%h",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
        ]
        if "training" in queues:
            argv += training_recycling_flags(self.env)
        if beat:
            argv += ["-B", "--schedule", str(self.log_dir / f"beat-{name}.db")]
        return self._spawn(f"worker-{name}", argv)

    def wait_ready(self, name: str, url: str, timeout: float = 60) -> None:
        """Wait until ``url`` answers 2xx, failing early if process ``name`` exits."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.log_dir / (name + '.log')}")
            try:
                if requests.get(url, timeout=10).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not answer {url} in time")

    def wait_web(self, timeout: float = 60) -> None:
        """Wait until the public URL answers ``/healthz`` (and, with the data plane, until it
        is ready: ``/v2/health/ready``)."""
        deadline = time.monotonic() + timeout
        checks = ["/healthz"] + (["/v2/health/ready"] if "serve" in self.procs else [])
        while time.monotonic() < deadline:
            for name in ("web", "serve"):
                if name in self.procs and self.procs[name].poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.log_dir / (name + '.log')}")
            try:
                if all(requests.get(self.base_url + c, timeout=10).ok for c in checks):
                    return
            except requests.RequestException:  # not listening yet, or still importing Django
                pass
            time.sleep(0.3)
        raise TimeoutError("web server did not answer in time")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group of ``name`` (a worker and its pool children)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """End every process started, whatever signals arrive meanwhile.

        Each child was started in a session (and so a process group) of its own, which holds
        its own children too (gunicorn's workers, Celery's pool and beat). Every group gets
        SIGTERM; after ``grace`` seconds the groups that still have a member get SIGKILL. A
        group is waited for until it is empty, not just its leader: a Celery pool child can
        outlive its parent. SIGINT, SIGTERM and SIGHUP are deferred for the duration (see
        :func:`signals_deferred`), so a second Ctrl-C, or the SIGTERM that ``make`` forwards
        after the one sent to the whole process group, cannot interrupt the shutdown halfway
        and leave workers running."""
        with signals_deferred():
            groups = {name: proc.pid for name, proc in self.procs.items()}
            for pgid in groups.values():
                _signal_group(pgid, signal.SIGTERM)
            if not self._wait_groups(groups, time.monotonic() + grace):
                for pgid in groups.values():
                    _signal_group(pgid, signal.SIGKILL)
                self._wait_groups(groups, time.monotonic() + STOP_KILL_WAIT_SECONDS)
            self.procs.clear()

    def _wait_groups(self, groups: dict[str, int], deadline: float) -> bool:
        """Reap the leaders and poll until every group in ``groups`` is empty (True) or
        ``deadline`` (``time.monotonic()``) passes (False)."""
        while True:
            for name in groups:
                proc = self.procs.get(name)
                if proc is not None:
                    proc.poll()  # reap the leader: a zombie still counts as a group member
            if not any(_group_alive(pgid) for pgid in groups.values()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
