"""A worker's health check: ``python -m workers.health [--node NAME] [--timeout SECONDS]``.

Exits 0 when the broker accepts a connection and the Celery worker named ``NAME`` answers a
control-API ping (``app.control.ping(destination=[NAME])``) within ``SECONDS``; otherwise
prints what failed to stderr and exits 1, within about ``2 × SECONDS``. A worker answers
pings only once it consumes (its pidbox is up), so "answers" means "takes tasks".

``NAME`` defaults to Celery's own default node name, ``celery@<this host's name>``, which is
what a worker started without ``-n`` calls itself (docker-compose's workers); ``%h`` in it is
this host's name, as in ``celery worker -n``. docker-compose.yml runs this as the workers'
health check (``x-worker-health``). Uses the shared Celery app (``saas.celery``) only: no task
module, no TensorFlow, so a check costs about a second of start-up.

Nothing printed carries the broker URL (it can hold a password): failures name the error's
class.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from celery.utils.nodenames import NODENAME_DEFAULT, gethostname, host_format, nodename

DEFAULT_TIMEOUT_SECONDS = 5.0


def broker_connection(app: Any, timeout: float) -> Any:
    """An open connection to ``app``'s broker (socket timeouts ``timeout``), or raises.

    Raises:
        OSError | kombu.exceptions.OperationalError: the broker refused, timed out or is
            unknown.
    """
    conn = app.connection_for_write(
        transport_options={"socket_connect_timeout": timeout, "socket_timeout": timeout}
    )
    try:
        # One attempt, no back-off sleep: a health check answers now.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except BaseException:
        conn.release()
        raise
    return conn


def check(node: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, app: Any = None) -> str | None:
    """``None`` when the broker is reachable and worker ``node`` (``name@host``) answers a
    ping within ``timeout`` seconds, else what failed (one line, no URL)."""
    if app is None:
        from saas.celery import app
    try:
        conn = broker_connection(app, timeout)
    except Exception as exc:  # noqa: BLE001 — any failure is "unhealthy", said plainly
        return f"broker unreachable ({type(exc).__name__})"
    try:
        replies = app.control.ping(destination=[node], timeout=timeout, connection=conn)
    except Exception as exc:  # noqa: BLE001
        return f"ping failed ({type(exc).__name__})"
    finally:
        conn.release()
    answered = {name for reply in replies for name in reply}
    if node not in answered:
        return f"no answer from {node} within {timeout:g} s"
    return None


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m workers.health", description=__doc__)
    parser.add_argument(
        "--node",
        default=nodename(NODENAME_DEFAULT, gethostname()),
        help="the worker's node name, name@host (%%h: this host); default celery@<host>",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"seconds for the broker connection and for the ping each "
        f"(default {DEFAULT_TIMEOUT_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    node = host_format(args.node)
    problem = check(node, args.timeout)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print(f"ok: {node} answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
