"""`make run`: the web server (on $PORT, default 8000) and the workers, in the foreground.

The data plane (``python -m serve``) listens on $PORT and forwards every path it does not
answer itself to gunicorn on a private port, so the whole API has one base URL (nginx does that
in docker-compose). Workers: training (``training-cpu``) and maintenance (``maintenance``,
running Celery beat), so beat's tasks never wait behind a training job.

Ctrl-C stops everything. Logs go to var/run/.
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


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (systemd, docker stop, timeout) stops the stack like Ctrl-C


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    port = int(os.environ.get("PORT", "8000"))
    log_dir = ROOT / "var" / "run"
    # Links in emails (invitations) point at this server unless configured otherwise.
    env = {
        "TRAINYARD_PUBLIC_URL": os.environ.get("TRAINYARD_PUBLIC_URL", f"http://localhost:{port}"),
        "REDIS_URL": redis_url_or_exit(),
    }
    with Stack(env=env, log_dir=log_dir, port=port) as stack:
        stack.start_web()
        stack.start_serve()
        stack.start_worker("training", Queue.TRAINING_CPU)
        stack.start_worker("maintenance", Queue.MAINTENANCE, beat=True)
        stack.wait_web()
        print(
            f"Trainyard on {stack.base_url} (API docs: {stack.base_url}/v1/docs); logs in {log_dir}"
        )
        print("Ctrl-C to stop.")
        try:
            while all(p.poll() is None for p in stack.procs.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
        dead = [n for n, p in stack.procs.items() if p.poll() is not None]
        if dead:
            print(f"stopped because {dead} exited; see {log_dir}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
