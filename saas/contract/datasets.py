"""THE dataset parsers: upload validation and the training runners read files through these.

Text datasets are UTF-8 CSV files (RFC 4180, :mod:`csv`; a BOM is accepted) whose header names
the text and label columns. Image datasets are ZIP archives with one folder per class
(``cat/001.jpg``, optionally under one top-level folder). The rules below decide, once, what a
file means; ``saas.datasets.validation`` adds the checks that need the bytes of every image
(decoding, the decompression budget) and ``workers.ml.runners`` reads the examples.

Normalisations and refusals (each has a test in ``tests/saas/contract/``):

- Header names are stripped: ``text, label`` names the columns ``text`` and ``label``.
- A row whose cells are all empty or blank (``,``, ``" , "``) is a blank line and skipped.
- Labels are stripped; texts are kept as written (a text that is only blanks is empty).
- A label holding a line break is refused: a model's labels are stored one a line.
- A row holding a NUL character (text or label) is refused: PostgreSQL cannot store it.
- In archive paths empty segments are dropped: ``a//1.png`` is ``1.png`` in class ``a``.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TextIO

from saas.contract.errors import ContractError
from saas.contract.tasks import IMAGE_EXTENSIONS

BOM = b"\xef\xbb\xbf"

# What each kind of row problem is called in one line (a runner's error message).
ROW_PROBLEM_KINDS: dict[str, str] = {
    "shape": "wrong number of fields",
    "empty_text": "empty text",
    "empty_label": "empty label",
    "label_newline": "line break in a label",
    "csv": "malformed CSV",
}


class MissingColumns(ContractError):
    """The header lacks the text and/or label column; ``missing`` names them, ``found`` lists
    the header's (stripped) names."""

    def __init__(
        self, detail: str, *, errors: list[dict[str, Any]], missing: list[str], found: list[str]
    ):
        super().__init__(detail, errors=errors)
        self.missing = missing
        self.found = found


@dataclass(frozen=True)
class TextExample:
    """One usable row: ``line`` (1-based, where the record ends), the text as written and the
    stripped label."""

    line: int
    text: str
    label: str


@dataclass
class ParsedCsv:
    """A text CSV read row by row.

    Attributes:
        columns: the header's names, stripped.
        examples: the rows that can be trained on, in file order.
        rows: non-blank data rows (usable or not).
        problems: ``{"kind", "message", "line"}`` per unusable row, ``kind`` one of
            :data:`ROW_PROBLEM_KINDS`; a ``csv`` problem ends the parse (the rest of the file
            cannot be read reliably).
    """

    columns: list[str]
    examples: list[TextExample] = field(default_factory=list)
    rows: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes) -> str:
    """Decode a CSV upload as UTF-8, dropping a leading BOM.

    Raises:
        ContractError: empty (or blank) file; bytes that are not UTF-8 (the message names the
            byte and its line, and the error has ``line``).
    """
    if not data.strip():
        raise ContractError(
            "The file is empty.", errors=[{"field": "file", "message": "the file is empty"}]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (3 if data.startswith(BOM) else 0)  # utf-8-sig drops the BOM
        line = _line_of(data, offset)
        msg = f"the file is not UTF-8: byte 0x{data[offset]:02x} on line {line} cannot be decoded"
        raise ContractError(
            "The file is not valid UTF-8; save it as UTF-8 and upload again.",
            errors=[{"field": "file", "message": msg, "line": line}],
        ) from None


def check_utf8_stream(stream: BinaryIO, *, chunk_size: int = 1 << 20) -> int:
    """:func:`decode_text`'s checks on a binary stream, in bounded memory (``chunk_size``
    bytes at a time, never the whole file): the same refusals with the same messages. Reads
    from the stream's current position to its end and leaves it there.

    Returns:
        The number of line feeds (``\\n``) in the file: a bound on its records that costs no
        parsing (a record ends with one, and a text may hold more).

    Raises:
        ContractError: as :func:`decode_text` (empty or blank file; not UTF-8, naming the byte
            and its line, the error carrying ``line``).
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1  # the line the next chunk starts on
    blank = True
    first = True
    while True:
        chunk = stream.read(chunk_size)
        final = not chunk
        if blank and chunk.strip():  # before the BOM is dropped, as decode_text looks
            blank = False
        if first and chunk.startswith(BOM):
            chunk = chunk[3:]  # dropped, as utf-8-sig does
        first = False
        pending = len(decoder.getstate()[0])  # a split character's first bytes, held over
        try:
            decoder.decode(chunk, final)
        except UnicodeDecodeError as exc:
            # exc.object is the held-over bytes (no newline among them) then this chunk.
            line = lines + exc.object[pending : exc.start].count(b"\n")
            byte = exc.object[exc.start]
            msg = f"the file is not UTF-8: byte 0x{byte:02x} on line {line} cannot be decoded"
            raise ContractError(
                "The file is not valid UTF-8; save it as UTF-8 and upload again.",
                errors=[{"field": "file", "message": msg, "line": line}],
            ) from None
        if final:
            break
        lines += chunk.count(b"\n")
    if blank:
        raise ContractError(
            "The file is empty.", errors=[{"field": "file", "message": "the file is empty"}]
        )
    return lines - 1


def open_text_records(
    stream: TextIO, *, text_column: str = "text", label_column: str = "label"
) -> tuple[list[str], Iterator[tuple[TextExample | None, list[tuple[str, str, int]]]]]:
    """Stream a CSV's records by :func:`parse_text_csv`'s rules without holding them: for
    upload validation, which must read a large file in bounded memory and stop at a budget.

    Args:
        stream: a text stream opened with ``newline=""`` (UTF-8 already checked).

    Returns:
        ``(columns, records)``: the stripped header names and an iterator yielding, per
        non-blank record, ``(example, [])`` for a usable row or ``(None, [(kind, message,
        line), …])`` (``kind`` one of :data:`ROW_PROBLEM_KINDS`; a ``csv`` problem ends it).

    Raises:
        ContractError, MissingColumns: as :func:`parse_text_csv`, for the header.
    """
    reader, names, ti, li = _open_csv(stream, text_column, label_column)
    return names, _records(reader, names, ti, li)


def parse_text_csv(
    data: bytes, *, text_column: str = "text", label_column: str = "label"
) -> ParsedCsv:
    """Parse a text-classification CSV (see the module docstring for the rules).

    Args:
        data: the whole file.
        text_column, label_column: header names of the two columns used (compared with the
            stripped header names).

    Returns:
        A :class:`ParsedCsv`; row problems are listed in it, not raised.

    Raises:
        ContractError: the two columns are the same (field ``label_column``), the file is empty
            or not UTF-8, or the header cannot be read.
        MissingColumns: a column is not in the header (fields ``text_column`` /
            ``label_column``).
    """
    _check_columns_differ(text_column, label_column)  # before the bytes, as it always was
    reader, names, ti, li = _open_csv(
        io.StringIO(decode_text(data), newline=""), text_column, label_column
    )
    parsed = ParsedCsv(columns=names)
    for example, problems in _records(reader, names, ti, li):
        parsed.rows += example is not None or problems[0][0] != "csv"
        if example is not None:
            parsed.examples.append(example)
        for kind, message, line in problems:
            parsed.problems.append(
                {"kind": kind, "message": f"line {line}: {message}", "line": line}
            )
    return parsed


def iter_text_examples(
    stream: TextIO, *, text_column: str = "text", label_column: str = "label"
) -> Iterator[TextExample]:
    """Stream the usable rows of a CSV from a text stream (``newline=""``), by the same rules
    as :func:`parse_text_csv`, without reading the whole file: for reads of a stored dataset
    (sample rows) that must agree with what upload validation and training saw. Unusable rows
    are skipped; a malformed record ends the stream.

    Raises:
        ContractError, MissingColumns: as :func:`parse_text_csv`, for the header.
    """
    reader, names, ti, li = _open_csv(stream, text_column, label_column)
    for example, _problems in _records(reader, names, ti, li):
        if example is not None:
            yield example


def _check_columns_differ(text_column: str, label_column: str) -> None:
    if text_column == label_column:
        raise ContractError(
            "The text and label columns must differ.",
            errors=[{"field": "label_column", "message": f"same as text_column ({text_column!r})"}],
        )


def _open_csv(
    stream: TextIO, text_column: str, label_column: str
) -> tuple[Any, list[str], int, int]:
    """The reader positioned after the header, the stripped header names and the indexes of
    the two columns. Raises as :func:`parse_text_csv` does for the header."""
    _check_columns_differ(text_column, label_column)
    reader = csv.reader(stream, strict=True)
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise ContractError(
            "The CSV header could not be read.", errors=[{"field": "file", "message": str(exc)}]
        ) from None
    names = [h.strip() for h in header]
    missing = [c for c in (text_column, label_column) if c not in names]
    if missing:
        found = ", ".join(repr(n) for n in names) or "none"
        raise MissingColumns(
            f"Missing column(s) {', '.join(repr(m) for m in missing)}; columns found: {found}.",
            errors=[
                {
                    "field": "text_column" if m == text_column else "label_column",
                    "message": f"column '{m}' not found; columns found: {found}",
                }
                for m in missing
            ],
            missing=missing,
            found=names,
        )
    return reader, names, names.index(text_column), names.index(label_column)


_Problem = tuple[str, str, int]  # (kind, message, line)


def _records(
    reader: Any, names: list[str], ti: int, li: int
) -> Iterator[tuple[TextExample | None, list[_Problem]]]:
    """Per non-blank record: its usable :class:`TextExample` and no problems, or None and its
    problems. Malformed quoting ends the file with ``(None, [("csv", …)])``."""
    try:
        for record in reader:
            line = reader.line_num
            if all(not cell.strip() for cell in record):
                continue  # a blank line, or only separators
            if len(record) != len(names):
                yield None, [("shape", f"{len(record)} fields, the header has {len(names)}", line)]
                continue
            text, label = record[ti], record[li].strip()
            problems: list[_Problem] = []
            if not text.strip():
                problems.append(("empty_text", "the text is empty", line))
            if not label:
                problems.append(("empty_label", "the label is empty", line))
            elif "\n" in label or "\r" in label:
                problems.append(
                    (
                        "label_newline",
                        f"the label {label!r} contains a line break (labels are one a line)",
                        line,
                    )
                )
            if "\x00" in text or "\x00" in label:
                # PostgreSQL cannot store NUL in the class counts (jsonb) or the examples a job
                # keeps, so such a row could never be stored after training.
                problems.append(("nul", "the row contains a NUL character", line))
            if problems:
                yield None, problems
            else:
                yield TextExample(line=line, text=text, label=label), []
    except csv.Error as exc:
        yield None, [("csv", f"malformed CSV ({exc})", reader.line_num)]


def row_problems_summary(parsed: ParsedCsv, limit: int = 3) -> str:
    """One sentence naming how many rows are unusable and the first few, for a runner's error."""
    shown = "; ".join(
        f"{ROW_PROBLEM_KINDS[p['kind']]} ({p['message']})" for p in parsed.problems[:limit]
    )
    more = len(parsed.problems) - limit
    return f"The CSV has {len(parsed.problems)} unusable row(s): {shown}" + (
        f"; and {more} more." if more > 0 else "."
    )


# --- image archives -------------------------------------------------------------------------


def member_parts(name: str) -> list[str]:
    """The non-empty segments of an archive path (``a//1.png`` → ``["a", "1.png"]``)."""
    return [p for p in name.split("/") if p]


def unsafe_member_reason(name: str) -> str | None:
    """Why a member path is unsafe to extract (absolute, backslash, ``..``), or None."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in path"
    if ".." in name.split("/"):
        return "'..' in path"
    return None


def is_ignored_member(name: str) -> bool:
    """Archive noise that is not part of the dataset: ``__MACOSX/``, dot files and folders,
    and entries with no name at all."""
    parts = member_parts(name)
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def member_class(name: str) -> str | None:
    """The class of an archive member ``…/<class>/<file>``: its parent folder's name (empty
    segments dropped). None for folders, ignored entries and files outside a class folder."""
    if name.endswith("/") or is_ignored_member(name):
        return None
    parts = member_parts(name)
    return parts[-2] if len(parts) >= 2 else None


def is_image_name(name: str) -> bool:
    """Whether the file name ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass(frozen=True)
class ImageMember:
    """An archive member that is a candidate image: its path and its class."""

    name: str
    label: str


def image_members(names: list[str]) -> Iterator[ImageMember | str]:
    """Walk archive member names in order and classify them.

    Yields an :class:`ImageMember` for every file in a class folder whose name has an image
    extension, and the bare name (a ``str``) for every file outside a class folder; folders,
    ignored entries and files without an image extension are skipped (upload validation reports
    the latter itself, after looking at their bytes).
    """
    for name in names:
        if name.endswith("/") or is_ignored_member(name):
            continue
        label = member_class(name)
        if label is None:
            yield name
        elif is_image_name(name):
            yield ImageMember(name=name, label=label)
