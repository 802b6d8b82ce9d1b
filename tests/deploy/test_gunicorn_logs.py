"""gunicorn's own lines (``gunicorn.conf.py``'s logger class) are the app's JSON lines."""

from __future__ import annotations

import io
import json
import logging
import runpy
from pathlib import Path

from gunicorn.config import Config

ROOT = Path(__file__).resolve().parents[2]


def test_gunicorn_error_log_lines_are_json(monkeypatch):
    monkeypatch.delenv("TRAINYARD_LOG_FORMAT", raising=False)
    monkeypatch.delenv("DEBUG", raising=False)
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    cfg = Config()
    cfg.set("errorlog", "-")
    logger = conf["logger_class"](cfg)
    try:
        (handler,) = logger.error_log.handlers
        handler.setStream(out := io.StringIO())
        logger.error_log.info("Booting worker with pid: %s", 42)
        line = json.loads(out.getvalue())
        assert line["event"] == "Booting worker with pid: 42"
        assert (line["logger"], line["level"]) == ("gunicorn.error", "info")
        assert line["timestamp"].endswith("Z")
    finally:
        for h in list(logger.error_log.handlers) + list(logger.access_log.handlers):
            h.close()
        logging.getLogger("gunicorn.error").handlers.clear()
        logging.getLogger("gunicorn.access").handlers.clear()
