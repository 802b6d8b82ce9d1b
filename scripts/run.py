"""`make run`: the web server (on $PORT, default 8000) and the workers, in the foreground.

The data plane (``python -m serve``) listens on $PORT and forwards every path it does not
answer itself to gunicorn on a private port, so the whole API has one base URL (nginx does that
in docker-compose). Workers: training (``training-cpu``) and maintenance (``maintenance``,
running Celery beat), so beat's tasks never wait behind a training job.

Ctrl-C, SIGTERM or SIGHUP stops everything, however many arrive: every child process group is
sent SIGTERM, then SIGKILL after a grace period (scripts/stack.py ``Stack.stop``). Logs go to
var/run/ (``TRAINYARD_RUN_LOG_DIR`` to change it).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from saas.celery import Queue  # noqa: E402
from scripts.stack import Stack, redis_url_or_exit  # noqa: E402

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _ignore_further(signum, frame):
    pass  # a stop is already under way: Stack.stop ends every child whatever arrives


def _terminate(signum, frame):
    """The first SIGINT, SIGTERM or SIGHUP stops the stack like Ctrl-C; any later one is
    ignored. A stop usually brings several (``timeout`` or a container runtime signals the whole
    process group, and ``make`` forwards the same signal to this process again): a second
    KeyboardInterrupt would land inside the shutdown and leave workers running."""
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _ignore_further)
    raise KeyboardInterrupt


def main() -> int:
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _terminate)
    port = int(os.environ.get("PORT", "8000"))
    log_dir = Path(os.environ.get("TRAINYARD_RUN_LOG_DIR") or ROOT / "var" / "run")
    # Links in emails (invitations) point at this server unless configured otherwise.
    env = {
        "TRAINYARD_PUBLIC_URL": os.environ.get("TRAINYARD_PUBLIC_URL", f"http://localhost:{port}"),
        "REDIS_URL": redis_url_or_exit(),
    }
    try:
        with Stack(env=env, log_dir=log_dir, port=port) as stack:
            stack.start_web()
            stack.start_serve()
            stack.start_worker("training", Queue.TRAINING_CPU)
            stack.start_worker("maintenance", Queue.MAINTENANCE, beat=True)
            stack.wait_web()
            print(
                f"Trainyard on {stack.base_url} (API docs: {stack.base_url}/v1/docs); "
                f"logs in {log_dir}"
            )
            print("Ctrl-C to stop.", flush=True)
            while all(p.poll() is None for p in stack.procs.values()):
                time.sleep(1)
            dead = [n for n, p in stack.procs.items() if p.poll() is not None]
            print(f"stopped because {dead} exited; see {log_dir}")
            return 1
    except KeyboardInterrupt:
        # A stop signal, wherever it landed (while starting, printing or waiting): leaving the
        # with statement has already ended every child (Stack.__exit__).
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
