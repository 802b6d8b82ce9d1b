"""Structured logs: one JSON object per line from every process (web, workers, ``serve``).

The codebase logs through the standard library (``logging.getLogger(__name__)``); django-structlog
logs through structlog. Both end in the root logger's handler, whose formatter is
:func:`formatter` (a ``structlog.stdlib.ProcessorFormatter``), so both come out alike::

    {"timestamp": "2026-12-02T13:30:00.123456Z", "level": "info",
     "logger": "django_structlog.middlewares.request", "event": "request_finished",
     "code": 200, "request": "GET /v1/models?cursor=-", "request_id": "5f0c…",
     "organization_id": "org_…", "api_key_id": "key_…", "user_id": null, "ip": "10.0.0.7"}

Fields: ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``event`` (the message), then
whatever the call passed and the context bound with ``structlog.contextvars`` for the current
request or task (``request_id``, ``organization_id``, ``job_id``, ``model_id``, …), and
``exception`` (the formatted traceback) for a logged exception. ``console`` instead renders
the same fields for a human (structlog's ``ConsoleRenderer``).

Nothing here needs Django's settings: ``saas/settings.py`` imports this module to build
``LOGGING``, and ``gunicorn.conf.py`` to format gunicorn's own lines alike.

Secrets never reach a line (:func:`redact_secrets`): values under secret-like keys are masked
wherever they are nested, and API keys, Stripe keys, bearer credentials and emailed-link tokens
are masked inside any string, tracebacks included. Customer content (prediction inputs, dataset
rows) is not masked here because it is never passed to a logger in the first place.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from django.core.exceptions import ImproperlyConfigured
from structlog.typing import EventDict, Processor, WrappedLogger

#: The values of ``TRAINYARD_LOG_FORMAT``.
LOG_FORMATS = ("json", "console")
MASK = "***"
REQUEST_ID_HEADER = "X-Request-ID"
# What an incoming id may look like: a UUID, nginx's $request_id (32 hex), a ULID, a trace id.
# Anything else (too long, spaces, quotes, control characters) is replaced by a fresh one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")

# A key is secret if one of its words (split on _ - . and spaces) is one of these, or the
# whole key names a key (``key``, ``api_key``, ``secret_key``, …). Whole words, so that
# ``max_tokens`` (a hyperparameter), ``routing_key`` (a queue) or ``api_key_id`` (an id) stay.
_SECRET_WORDS = frozenset(
    {
        "authorization",
        "password",
        "passwd",
        "secret",
        "token",
        "cookie",
        "apikey",
        "credentials",
        "signature",
        "sessionid",
        "csrftoken",
    }
)
_SECRET_KEY_NAME = re.compile(r"^(?:.*_)?(?:api|secret|access|private|session|signing)_key$|^key$")
_WORD_SPLIT = re.compile(r"[_\-.\s]+")

# Inside strings. Our API keys (ty_live_<12-char public id>_<secret>: the public id is kept,
# it names the key without granting anything), Stripe secret/restricted keys and webhook
# secrets, HTTP credentials, and the values of token-like query parameters (emailed links).
_API_KEY = re.compile(r"\b(ty_(?:live|test)_)([A-Za-z0-9]{12}_)?[A-Za-z0-9_\-]+")
_STRIPE_KEY = re.compile(r"\b((?:sk|rk)_(?:live|test)_|whsec_)[A-Za-z0-9]+")
# Credentials after their scheme's name; Basic only when it looks like base64 (a digit, + / or
# = in it) and Internal (the dashboard's signed token) only when it has the signer's ":", so
# that "basic usage" or "internal error" in a message stay as they are.
_CREDENTIALS = re.compile(
    r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]+"
    r"|\b(basic)(\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"
    r"|\b(internal)(\s+)(?=[A-Za-z0-9._\-]*:)[A-Za-z0-9._:\-]{16,}"
)
_QUERY_SECRET = re.compile(
    r"(?i)([?&](?:token|invitation|key|api_key|secret|password|code|signature)=)([^&\s\"'#]+)"
)

# The token segments of emailed links' paths (saas.common.redact) anywhere in a string: Django's
# own "Internal Server Error: /password-reset/<uid>/<token>" line names the path.
_TOKEN_PATH = re.compile(r"(/password-reset/|/signup/confirm/)[^/\s?#\"']+/[^/\s?#\"']+")


def log_format(value: str, *, debug: bool) -> str:
    """``TRAINYARD_LOG_FORMAT``: ``json`` (one JSON object per line) or ``console`` (for a
    person at a terminal), any letter case; empty means ``console`` with DEBUG on, ``json``
    otherwise (production). Raises ImproperlyConfigured for any other value."""
    value = value.strip().lower()
    if not value:
        return "console" if debug else "json"
    if value not in LOG_FORMATS:
        raise ImproperlyConfigured(
            f"TRAINYARD_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {value!r}"
        )
    return value


def incoming_request_id(value: str | None) -> str | None:
    """``value`` (an ``X-Request-ID`` header) if it is a usable id: 1–128 characters of
    letters, digits and ``. _ : -``, starting with a letter or digit; else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def _is_secret_key(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    if _SECRET_KEY_NAME.match(lowered) or "secret" in lowered:
        return True
    return any(word in _SECRET_WORDS for word in _WORD_SPLIT.split(lowered))


def _mask_credentials(m: re.Match[str]) -> str:
    scheme, space = next((m[i], m[i + 1]) for i in (1, 3, 5) if m[i] is not None)
    return f"{scheme}{space}{MASK}"


def mask_string(value: str) -> str:
    """``value`` with API keys (``ty_live_<id>_***``), Stripe keys, ``Bearer``/``Basic``
    credentials and token-like query values masked; unchanged when it holds none."""
    # Credentials first: "Bearer ty_live_…" becomes "Bearer ***", not a half-masked key.
    if " " in value or "\t" in value:
        value = _CREDENTIALS.sub(_mask_credentials, value)
    if "_" in value:
        value = _API_KEY.sub(lambda m: f"{m[1]}{m[2] or ''}{MASK}", value)
        value = _STRIPE_KEY.sub(lambda m: f"{m[1]}{MASK}", value)
    if "/" in value:
        value = _TOKEN_PATH.sub(lambda m: f"{m[1]}-/-", value)
    if "=" in value:
        # Kept when already redacted to "-" (saas.common.redact, the request lines).
        value = _QUERY_SECRET.sub(lambda m: m[0] if m[2] == "-" else f"{m[1]}{MASK}", value)
    return value


def _redact(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return mask_string(value)
    if depth > 8:  # a structure this deep is not worth walking; its repr is masked instead
        return mask_string(repr(value))
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and _is_secret_key(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v, depth + 1) for v in value]
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask every value under a secret-like key (``authorization``,
    ``api_key``, ``key``, ``token``, ``password``, ``secret``, ``cookie``, ``stripe_*secret*``,
    any letter case, at any depth of dicts and lists) and the secrets inside every string
    (:func:`mask_string`). Returns the same event dict, its values replaced."""
    for key, value in event_dict.items():
        if key.startswith("_"):  # ProcessorFormatter's _record / _from_structlog
            continue
        event_dict[key] = MASK if _is_secret_key(key) else _redact(value)
    return event_dict


_FIRST = ("timestamp", "level", "logger", "event")


def _fields_in_order(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """``timestamp``, ``level``, ``logger``, ``event`` first, for a person reading the line."""
    ordered = {k: event_dict.pop(k) for k in _FIRST if k in event_dict}
    ordered.update(event_dict)
    return ordered


def _shared_processors() -> list[Processor]:
    """What every line gets, whether structlog or the standard library logged it."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def formatter(fmt: str = "json") -> logging.Formatter:
    """The root handler's formatter (``LOGGING["formatters"]``: ``{"()": "saas.common.logs.formatter",
    "fmt": "json"}``). ``fmt`` is ``"json"`` (one JSON object per line) or ``"console"``.

    Tracebacks are formatted as text (no local variables: they may hold secrets or customer
    content) and then redacted like every other value.
    """
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {fmt!r}")
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,
            *([_fields_in_order] if fmt == "json" else []),
            renderer,
        ],
    )


def configure_structlog() -> None:
    """Route structlog's loggers (django-structlog's) through the standard library, so that
    the root handler and :func:`formatter` render them. Idempotent; settings call it."""
    processors: list[Processor] = [
        structlog.stdlib.filter_by_level,
        *_shared_processors(),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` (a ``logging.config.dictConfig`` dict): one stream handler on the
    root logger at ``level``, formatted by :func:`formatter` in ``fmt``. Also the uvicorn loggers
    of the data plane, so that ``serve``'s server lines are the same JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "saas.common.logs.formatter", "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"level": "ERROR"},
            # httpx logs every request's full URL at INFO; the data plane forwards the
            # dashboard's requests through it (emailed links with their tokens), so only its
            # warnings.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            # uvicorn (``python -m serve``) gives its loggers handlers of their own (plain
            # text) and stops them propagating; here they lose those and reach the root's.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            # serve has no access log (``access_log=False``, which uvicorn implements by not
            # propagating this one): no line per prediction, and none with the unredacted
            # paths of the emailed links it forwards to the web tier.
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
