"""gunicorn's sync worker, answering its own errors as RFC 9457 problems instead of HTML.

gunicorn writes an error page itself, outside the Django app, in three cases: a request it
cannot parse (400, 414 URI too long, 431 headers too large…), an exception that escapes the
WSGI app, and a worker timeout (the arbiter's SIGABRT becomes ``SystemExit`` inside the
request, and gunicorn answers 500). Its page is ``text/html``; every client of this API expects
``application/problem+json``. gunicorn has no hook for that page, so this worker swaps the
one function that writes it (``gunicorn.util.write_error``) for its own process only, when
the worker starts. ``gunicorn.conf.py`` at the repository root selects this worker (gunicorn
reads that file from its working directory: the repo in ``make run``, ``/app`` in the image).
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

TYPE_BASE = "https://trainyard.dev/problems/"
_CODES = {
    400: "bad-request",
    403: "forbidden",
    408: "request-timeout",
    414: "uri-too-long",
    417: "expectation-failed",
    431: "headers-too-large",
    500: "internal-error",
    501: "not-implemented",
}


def problem_bytes(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 answer (status line, headers, body) for one of gunicorn's errors.

    Args:
        status: the HTTP status gunicorn chose. reason: its reason phrase (ASCII).
        message: gunicorn's description (the parse error); not sent for a 500, whose cause is
            ours and is in the log (a timeout says so in plain words instead).
    """
    if status >= 500:
        detail = (
            "The request took too long or failed on our side; it has been logged. Retry later, "
            "or send less work per request."
        )
    else:
        detail = message or reason
    body = json.dumps(
        {
            "type": TYPE_BASE + _CODES.get(status, "error"),
            "title": reason,
            "status": status,
            "detail": detail,
        }
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_problem(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for ``gunicorn.util.write_error(sock, status_int, reason, mesg)``."""
    util.write_nonblock(sock, problem_bytes(int(status_int), str(reason), str(mesg)))


class ProblemSyncWorker(SyncWorker):
    """``SyncWorker`` whose own error answers are problem+json (see the module docstring)."""

    def init_process(self) -> None:
        util.write_error = write_problem  # this worker process only; gunicorn calls it by name
        super().init_process()
