"""Redact secrets from URLs before they are logged (access logs, referers).

Links emailed to people carry secrets: invitation tokens in the query string
(``/invitations/accept?token=…``, ``/signup?invitation=…``), password-reset and sign-up
confirmation tokens in the path (``/password-reset/<uid>/<token>``,
``/signup/confirm/<uid>/<token>``). An access log line must not carry them: whoever reads the
logs could join an organisation or take an account over. So every query value is dropped
(its name is kept) and those path segments are replaced, wherever the URL appears (the
request line, the path, the ``Referer``). Pure string functions, no Django: gunicorn's logger
(``gunicorn.conf.py``) imports this module.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "-"

# Routes whose last two path segments are <uid>/<token> (Django's reset scheme, and ours).
_TOKEN_PATHS = re.compile(r"^(?P<route>/password-reset/|/signup/confirm/)[^/]+/[^/]+")


def redact_query(query: str) -> str:
    """``a=1&token=s3cret&b`` → ``a=-&token=-&b``: names kept, every value dropped."""
    if not query:
        return query
    return "&".join(
        part.split("=", 1)[0] + ("=" + REDACTED if "=" in part else "") for part in query.split("&")
    )


def redact_path(path: str) -> str:
    """A path with the token segments of the emailed-link routes replaced."""
    return _TOKEN_PATHS.sub(lambda m: f"{m['route']}{REDACTED}/{REDACTED}", path)


def redact_url(url: str) -> str:
    """A path with an optional query (``/x?token=…``) or an absolute URL, redacted: the path's
    token segments and every query value. Anything unparsable comes back as ``-``."""
    if not url or url == "-":
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    return urlunsplit(
        (parts.scheme, parts.netloc, redact_path(parts.path), redact_query(parts.query), "")
    )


def redact_request_line(line: str) -> str:
    """``GET /x?token=… HTTP/1.1`` with its target redacted (see :func:`redact_url`)."""
    method, sep, rest = line.partition(" ")
    if not sep:
        return redact_url(line)
    target, sep2, protocol = rest.rpartition(" ")
    if not sep2:
        return f"{method} {redact_url(rest)}"
    return f"{method} {redact_url(target)} {protocol}"
