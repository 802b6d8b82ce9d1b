"""Validation of uploads, producing the dataset report or every problem found.

Text: a UTF-8 CSV (RFC 4180, parsed with :mod:`csv`; a BOM is accepted) with a header naming
the text and label columns. Images: a ZIP with one folder per class (the Keras
``image_dataset_from_directory`` layout, optionally under one top-level folder), JPEG or PNG
files decoded with Pillow. The ZIP is read as a stream with a budget on entries and on the bytes
actually decompressed (never the sizes the archive claims), so a ZIP bomb stops early.

Nothing here touches the database or storage: :func:`validate_text_csv` and
:func:`validate_image_zip` take bytes/a file and return a :class:`Validated` or raise
:class:`~saas.common.errors.ValidationFailed` whose ``extra["report"]`` holds what was learned.
"""

from __future__ import annotations

import csv
import hashlib
import io
import posixpath
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from saas.common.errors import ValidationFailed

MAX_LISTED = 50  # problems listed per kind; the count says how many in all
SMALL_CLASS_WARNING = 10
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}
IMAGE_FORMATS = {"JPEG", "PNG"}
SUPPORTED_COMPRESSION = {
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
    zipfile.ZIP_BZIP2,
    zipfile.ZIP_LZMA,
}


@dataclass
class Validated:
    """A dataset that can be trained on: ``classes`` is ``{label: count}`` sorted by label."""

    num_examples: int
    classes: dict[str, int]
    report: dict
    warnings: list[str] = field(default_factory=list)


class _Problems:
    """Collects problems of one kind with a cap on how many are listed."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, message: str, **where) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= MAX_LISTED:
            self.items.append({"field": "file", "message": message, **where})

    def finish(self) -> list[dict]:
        extra = [
            {"field": "file", "message": f"… and {n - MAX_LISTED} more problems of kind '{kind}'"}
            for kind, n in self.counts.items()
            if n > MAX_LISTED
        ]
        return self.items + extra

    def __bool__(self) -> bool:
        return bool(self.items)


def _class_checks(classes: Counter[str], problems: _Problems, warns: list[str]) -> None:
    if len(classes) == 1:
        (only,) = classes
        problems.add(
            "classes", f"at least 2 classes are needed to train a classifier; found only '{only}'"
        )
    for label, n in sorted(classes.items()):
        if n < 2:
            problems.add(
                "classes",
                f"class '{label}' has {n} example; every class needs at least 2 "
                "(one to train on, one to validate)",
            )
        elif n < SMALL_CLASS_WARNING:
            warns.append(f"class '{label}' has only {n} examples; expect poor recall on it")


def _balance(classes: Counter[str]) -> dict:
    if not classes:
        return {"examples_per_class": {}, "imbalance_ratio": None}
    counts = dict(sorted(classes.items()))
    return {
        "examples_per_class": counts,
        "imbalance_ratio": round(max(counts.values()) / min(counts.values()), 3),
    }


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def validate_text_csv(
    data: bytes, *, text_column: str = "text", label_column: str = "label"
) -> Validated:
    """Validate a text-classification CSV.

    Args:
        data: the whole upload (bytes; the size limit is enforced before this is called).
        text_column, label_column: header names of the two columns used.

    Returns a :class:`Validated`. Raises :class:`ValidationFailed` listing every problem: empty
    file, non-UTF-8 bytes (with the line), malformed CSV, missing columns (naming those found),
    no data rows, empty text or label cells (rows listed), fewer than 2 classes, a class with
    fewer than 2 examples.
    """
    if text_column == label_column:
        raise ValidationFailed(
            "The text and label columns must differ.",
            errors=[{"field": "label_column", "message": f"same as text_column ({text_column!r})"}],
        )
    problems = _Problems()
    if not data.strip():
        raise ValidationFailed(
            "The file is empty.", errors=[{"field": "file", "message": "the file is empty"}]
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        offset = exc.start + (
            3 if data.startswith(b"\xef\xbb\xbf") else 0
        )  # utf-8-sig drops the BOM
        line = _line_of(data, offset)
        msg = f"the file is not UTF-8: byte 0x{data[offset]:02x} on line {line} cannot be decoded"
        raise ValidationFailed(
            "The file is not valid UTF-8; save it as UTF-8 and upload again.",
            errors=[{"field": "file", "message": msg, "line": line}],
        ) from None

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise ValidationFailed(
            "The CSV header could not be read.", errors=[{"field": "file", "message": str(exc)}]
        ) from None
    names = [h.strip() for h in header]
    missing = [c for c in (text_column, label_column) if c not in names]
    if missing:
        found = ", ".join(repr(n) for n in names) or "none"
        raise ValidationFailed(
            f"Missing column(s) {', '.join(repr(m) for m in missing)}; columns found: {found}.",
            errors=[
                {
                    "field": "text_column" if m == text_column else "label_column",
                    "message": f"column '{m}' not found; columns found: {found}",
                }
                for m in missing
            ],
        )
    ti, li = names.index(text_column), names.index(label_column)

    classes: Counter[str] = Counter()
    seen_texts: Counter[str] = Counter()
    rows = 0
    empty_texts = empty_labels = 0
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue  # blank line
            rows += 1
            if len(record) != len(names):
                problems.add(
                    "shape",
                    f"line {line}: {len(record)} fields, the header has {len(names)}",
                    line=line,
                )
                continue
            t, lab = record[ti].strip(), record[li].strip()
            if not t:
                empty_texts += 1
                problems.add("empty_text", f"line {line}: the text is empty", line=line)
            if not lab:
                empty_labels += 1
                problems.add("empty_label", f"line {line}: the label is empty", line=line)
            if t and lab:
                classes[lab] += 1
                seen_texts[t] += 1
    except csv.Error as exc:
        problems.add("csv", f"line {reader.line_num}: malformed CSV ({exc})", line=reader.line_num)

    if rows == 0 and not problems:
        raise ValidationFailed(
            "The file has a header but no data rows.",
            errors=[{"field": "file", "message": "no data rows after the header"}],
        )
    warns: list[str] = []
    _class_checks(classes, problems, warns)
    duplicates = sum(n - 1 for n in seen_texts.values() if n > 1)
    if duplicates:
        warns.append(f"{duplicates} rows repeat an earlier text exactly")
    report = {
        **_balance(classes),
        "rows": rows,
        "duplicate_texts": duplicates,
        "duplicate_examples": [t for t, n in seen_texts.most_common(10) if n > 1],
        "empty_texts": empty_texts,
        "empty_labels": empty_labels,
        "columns": names,
        "warnings": warns,
    }
    if problems:
        raise ValidationFailed(
            f"The CSV has {sum(problems.counts.values())} problem(s); nothing was stored.",
            errors=problems.finish(),
            report=report,
        )
    return Validated(
        num_examples=sum(classes.values()),
        classes=dict(sorted(classes.items())),
        report=report,
        warnings=warns,
    )


def _unsafe_name(name: str) -> str | None:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if "\\" in name:
        return "backslash in path"
    if ".." in name.split("/"):
        return "'..' in path"
    return None


def _ignored(name: str) -> bool:
    parts = [p for p in name.split("/") if p]
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def member_class(name: str) -> str | None:
    """The class of an archive member ``…/<class>/<file>``: its parent folder's name. None for
    folders, ignored entries (``__MACOSX``, dot files) and files outside a class folder."""
    if name.endswith("/") or _ignored(name):
        return None
    parts = name.split("/")
    return parts[-2] if len(parts) >= 2 else None


def validate_image_zip(fileobj: BinaryIO) -> Validated:
    """Validate an image-classification ZIP (one folder per class, JPEG/PNG files).

    Args:
        fileobj: a seekable binary file holding the upload.

    Returns a :class:`Validated`. Raises :class:`ValidationFailed` listing every problem: not a
    ZIP, unsafe member paths (absolute, ``..``), more entries or more decompressed bytes than
    the budgets (``TRAINYARD_ZIP_MAX_ENTRIES``, ``TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES``), files
    outside a class folder, non-image or undecodable (e.g. truncated) files, images over
    ``TRAINYARD_MAX_IMAGE_PIXELS``, fewer than 2 classes, a class with fewer than 2 images.
    """
    max_entries = settings.TRAINYARD_ZIP_MAX_ENTRIES
    budget = settings.TRAINYARD_ZIP_MAX_UNCOMPRESSED_BYTES
    max_pixels = settings.TRAINYARD_MAX_IMAGE_PIXELS
    try:
        zf = zipfile.ZipFile(fileobj)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError):
        raise ValidationFailed(
            "The file is not a ZIP archive.",
            errors=[
                {
                    "field": "file",
                    "message": "not a ZIP archive (image datasets are a ZIP of class folders)",
                }
            ],
        ) from None
    if len(infos) > max_entries:
        raise ValidationFailed(
            f"The archive has {len(infos)} entries; the limit is {max_entries}.",
            errors=[{"field": "file", "message": f"{len(infos)} entries > limit {max_entries}"}],
        )
    problems = _Problems()
    for info in infos:
        reason = _unsafe_name(info.filename)
        if reason:
            problems.add(
                "unsafe_path",
                f"{info.filename!r}: unsafe member path ({reason})",
                member=info.filename,
            )
    if problems:
        raise ValidationFailed(
            "The archive contains unsafe paths; nothing was extracted.", errors=problems.finish()
        )

    classes: Counter[str] = Counter()
    digests: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    undecodable = 0
    spent = 0
    files = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for info in infos:
            name = info.filename
            if info.is_dir() or _ignored(name):
                continue
            files += 1
            label = member_class(name)
            if label is None:
                problems.add(
                    "layout",
                    f"{name!r}: not inside a class folder (expected class/{name})",
                    member=name,
                )
                continue
            if info.compress_type not in SUPPORTED_COMPRESSION:
                problems.add(
                    "corrupt",
                    f"{name!r}: unsupported ZIP compression method {info.compress_type}",
                    member=name,
                )
                continue
            chunks = []
            try:
                with zf.open(info) as member:
                    while chunk := member.read(1 << 16):
                        spent += len(chunk)
                        if spent > budget:
                            raise ValidationFailed(
                                f"The archive expands to more than {budget} bytes; refused as a ZIP bomb.",
                                errors=[
                                    {
                                        "field": "file",
                                        "message": f"decompressed size exceeds {budget} bytes at {name!r}",
                                    }
                                ],
                            )
                        chunks.append(chunk)
            except (
                zipfile.BadZipFile,
                OSError,
                EOFError,
                RuntimeError,
            ) as exc:
                problems.add(
                    "corrupt", f"{name!r}: cannot be read from the archive ({exc})", member=name
                )
                continue
            blob = b"".join(chunks)
            ext = posixpath.splitext(name)[1].lower()
            try:
                with Image.open(io.BytesIO(blob)) as img:
                    fmt = img.format
                    w, h = img.size
                    if w * h > max_pixels:
                        problems.add(
                            "too_large",
                            f"{name!r}: {w}x{h} pixels is over the limit of {max_pixels} pixels",
                            member=name,
                        )
                        continue
                    img.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                problems.add(
                    "too_large",
                    f"{name!r}: over Pillow's pixel limit (decompression bomb)",
                    member=name,
                )
                continue
            except UnidentifiedImageError:
                problems.add("not_image", f"{name!r}: not a JPEG or PNG image", member=name)
                continue
            except (OSError, SyntaxError, ValueError) as exc:
                undecodable += 1
                problems.add(
                    "undecodable", f"{name!r}: the image cannot be decoded ({exc})", member=name
                )
                continue
            if fmt not in IMAGE_FORMATS:
                problems.add(
                    "not_image",
                    f"{name!r}: {fmt} images are not supported (JPEG or PNG)",
                    member=name,
                )
                continue
            if ext not in IMAGE_EXTENSIONS:
                problems.add(
                    "not_image", f"{name!r}: file name must end in .jpg, .jpeg or .png", member=name
                )
                continue
            classes[label] += 1
            digests[hashlib.sha256(blob).hexdigest()] += 1
            sizes[f"{w}x{h}"] += 1

    if files == 0:
        raise ValidationFailed(
            "The archive holds no image files.",
            errors=[{"field": "file", "message": "no files found; expected one folder per class"}],
        )
    warns: list[str] = []
    _class_checks(classes, problems, warns)
    duplicates = sum(n - 1 for n in digests.values() if n > 1)
    if duplicates:
        warns.append(f"{duplicates} images are byte-for-byte copies of another image")
    report = {
        **_balance(classes),
        "files": files,
        "duplicate_images": duplicates,
        "undecodable_images": undecodable,
        "image_sizes": dict(sizes.most_common(20)),
        "uncompressed_bytes": spent,
        "warnings": warns,
    }
    if problems:
        raise ValidationFailed(
            f"The archive has {sum(problems.counts.values())} problem(s); nothing was stored.",
            errors=problems.finish(),
            report=report,
        )
    return Validated(
        num_examples=sum(classes.values()),
        classes=dict(sorted(classes.items())),
        report=report,
        warnings=warns,
    )
