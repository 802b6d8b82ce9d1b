"""The API's JSON parser: every failure is a 400, and no string it returns can break a query or
a response.

DRF's own parser lets ``RecursionError`` through (a 500), and accepts two kinds of strings
that nothing downstream can hold: NUL (``\\u0000``), which PostgreSQL refuses in text and jsonb
(a DataError, so a 500 in whichever view stored or filtered by it), and lone surrogates
(``\\ud800``), which cannot be encoded as UTF-8 at all (psycopg raises, and so does the
renderer when an error message echoes the value). Both are refused here, naming each field,
once for every JSON route.
"""

from __future__ import annotations

from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError, ValidationError

#: At most this many offending fields are named in one 400.
MAX_NAMED = 20


def bad_text(value: str) -> str | None:
    """Why ``value`` cannot be stored or rendered (``None`` when it can): a NUL character, or a
    lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode text)"
    return None


def _printable(text: str) -> str:
    """``text`` safe to echo in an error: NUL and surrogates spelled as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def bad_strings(data: Any, path: str = "") -> list[dict[str, str]]:
    """``[{"field", "message"}]`` for every key or string value in the parsed JSON ``data``
    that :func:`bad_text` refuses; ``field`` is a dotted path (``hyperparameters.x``, ``to[2]``)."""
    out: list[dict[str, str]] = []
    stack: list[tuple[Any, str]] = [(data, path)]
    while stack and len(out) < MAX_NAMED:
        value, where = stack.pop()
        if isinstance(value, str):
            why = bad_text(value)
            if why:
                out.append({"field": _printable(where) or "(body)", "message": why})
        elif isinstance(value, dict):
            for k, v in value.items():
                name = f"{where}.{k}" if where else str(k)
                why = bad_text(str(k))
                if why:
                    out.append({"field": _printable(name), "message": f"field name {why}"})
                stack.append((v, name))
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return out


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, plus: too-deep nesting is a 400 ``malformed-request``, and a NUL or
    lone surrogate in any key or string is a 400 ``validation-failed`` naming each field."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
        errors = bad_strings(data)
        if errors:
            raise ValidationError({e["field"]: [e["message"]] for e in errors})
        return data
