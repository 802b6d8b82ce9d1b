"""Dataset pages: the raw CSV lines beside an upload's problems, class balance rows,
image thumbnails.

Pure: nothing here queries the database, reads a request or renders HTML.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

#: The longest raw CSV line shown beside a validation problem (characters).
OFFENDING_LINE_CHARS = 200


def offending_lines(
    data: bytes | Iterable[bytes], problems: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Attach the raw text of each CSV problem's ``line`` for display.

    Args:
        data: the uploaded CSV's bytes, or a binary file positioned at its start, read line
            by line only up to the last wanted line (any encoding; undecodable bytes are
            replaced).
        problems: ``[{"message", "line"?: int (1-based, physical line of the file)}]``.

    Returns:
        The problems unchanged when none has an integer ``line``; otherwise each problem with
        its ``message`` stripped of a leading ``"line N: "`` and ``text``: that line without
        its line ending, at most ``OFFENDING_LINE_CHARS`` characters (``None`` when the file
        has no such line or the problem names no line).
    """
    rows = [dict(p) for p in problems]
    wanted = {p["line"] for p in rows if isinstance(p.get("line"), int)}
    if not wanted:
        return rows
    last = max(wanted)
    texts: dict[int, str] = {}
    lines = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    for number, raw in enumerate(lines, start=1):
        if number in wanted:
            texts[number] = raw.decode("utf-8", "replace").rstrip("\r\n")[:OFFENDING_LINE_CHARS]
        if number >= last:
            break
    return [
        {
            **p,
            "message": p["message"].removeprefix(f"line {p.get('line')}: "),
            "text": texts.get(p["line"]) if isinstance(p.get("line"), int) else None,
        }
        for p in rows
    ]


def class_rows(classes: Mapping[str, int]) -> list[tuple[str, int]]:
    """``{label: count}`` as ``[(label, count)]``, largest first, ties by label."""
    return sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))


def thumbnails(samples: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Sample images ``[(member name, label)]`` as ``[{"n": index, "label", "name"}]``; ``n`` is
    the index the thumbnail URL takes."""
    return [{"n": i, "label": label, "name": name} for i, (name, label) in enumerate(samples)]
