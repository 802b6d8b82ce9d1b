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
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


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

    def stop(self) -> None:
        for name in list(self.procs):
            proc = self.procs[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name in list(self.procs):
            try:
                self.procs[name].wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.procs[name].pid, signal.SIGKILL)
            self.procs.pop(name)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
