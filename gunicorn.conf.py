"""gunicorn settings for the web tier (loaded from the working directory, or with ``-c``).

Only what the command lines (``scripts/stack.py``, ``docker/Dockerfile``, compose) do not
say. Errors gunicorn answers itself (unparseable requests, worker timeouts) are problem+json, not
HTML (``saas/gunicorn_worker.py``). The access log never carries secrets. Emailed links hold invitation tokens in their query
strings and password-reset / sign-up confirmation tokens in their paths, so every request line,
path, query and referer is redacted before it is written (``saas.common.redact``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gunicorn.glogging import Logger

# gunicorn reads this file before it applies --pythonpath or --chdir: the repository (this
# file's folder) must be importable whatever the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from saas.common.logs import formatter, log_format
from saas.common.redact import redact_query, redact_request_line, redact_url


class RedactingLogger(Logger):
    """gunicorn's logger, writing access-log atoms without tokens: ``%(r)s`` (the request
    line), ``%(U)s`` (the path), ``%(q)s`` (the query), ``%(f)s`` and ``%({referer}i)s``, and
    the same values as environ or header atoms (``%({raw_uri}e)s``, ``%({location}o)s``, …).

    gunicorn's own lines (start, worker boots and exits, timeouts) are the app's JSON lines
    (``saas.common.logs``, ``TRAINYARD_LOG_FORMAT``); the access log keeps its text format,
    one line per request beside the app's ``request_finished``."""

    def setup(self, cfg):
        super().setup(cfg)
        debug = os.environ.get("DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
        fmt = formatter(log_format(os.environ.get("TRAINYARD_LOG_FORMAT", ""), debug=debug))
        for handler in self.error_log.handlers:
            handler.setFormatter(fmt)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["r"] = redact_request_line(atoms.get("r", ""))
        atoms["U"] = redact_url(atoms.get("U", ""))
        atoms["q"] = redact_query(atoms.get("q", ""))
        atoms["f"] = redact_url(atoms.get("f", ""))
        for key in _URL_ATOMS & atoms.keys():
            atoms[key] = redact_url(str(atoms[key]))
        if "{query_string}e" in atoms:
            atoms["{query_string}e"] = redact_query(str(atoms["{query_string}e"]))
        return atoms


_URL_ATOMS = {
    "{referer}i",
    "{location}o",
    "{raw_uri}e",
    "{path_info}e",
    "{http_referer}e",
    "{request_uri}e",
}


logger_class = RedactingLogger

# Errors gunicorn answers itself are problem+json (saas/gunicorn_worker.py).
worker_class = "saas.gunicorn_worker.ProblemSyncWorker"
