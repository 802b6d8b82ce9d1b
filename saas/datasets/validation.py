"""Validation of uploads, producing the dataset report or every problem found.

Files are read with the contract's parsers (:mod:`saas.contract.datasets`), the ones the
training runners use, so an upload that validates is read the same way when it trains.
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

import hashlib
import io
import warnings
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from saas.common.errors import ValidationFailed
from saas.contract import IMAGE_EXTENSIONS, IMAGE_FORMATS, ContractError
from saas.contract.datasets import (
    is_ignored_member,
    is_image_name,
    member_class,
    parse_text_csv,
    unsafe_member_reason,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "Validated",
    "member_class",
    "validate_image_zip",
    "validate_text_csv",
]

MAX_LISTED = 50  # problems listed per kind; the count says how many in all
SMALL_CLASS_WARNING = 10
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


def validate_text_csv(
    data: bytes, *, text_column: str = "text", label_column: str = "label"
) -> Validated:
    """Validate a text-classification CSV.

    Args:
        data: the whole upload (bytes; the size limit is enforced before this is called).
        text_column, label_column: header names of the two columns used.

    Returns a :class:`Validated`. Raises :class:`ValidationFailed` listing every problem: empty
    file, non-UTF-8 bytes (with the line), malformed CSV, missing columns (naming those found),
    no data rows, empty text or label cells (rows listed), a label holding a line break, fewer
    than 2 classes, a class with fewer than 2 examples. The parsing rules (stripped header
    names, blank rows skipped…) are :mod:`saas.contract.datasets`'s.
    """
    try:
        parsed = parse_text_csv(data, text_column=text_column, label_column=label_column)
    except ContractError as exc:
        raise ValidationFailed(exc.detail, errors=exc.errors) from None

    problems = _Problems()
    for p in parsed.problems:
        problems.add(p["kind"], p["message"], line=p["line"])
    classes: Counter[str] = Counter(e.label for e in parsed.examples)
    seen_texts: Counter[str] = Counter(e.text.strip() for e in parsed.examples)
    empty_texts = problems.counts["empty_text"]
    empty_labels = problems.counts["empty_label"]

    if parsed.rows == 0 and not problems:
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
        "rows": parsed.rows,
        "duplicate_texts": duplicates,
        "duplicate_examples": [t for t, n in seen_texts.most_common(10) if n > 1],
        "empty_texts": empty_texts,
        "empty_labels": empty_labels,
        "columns": parsed.columns,
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
        reason = unsafe_member_reason(info.filename)
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
            if info.is_dir() or is_ignored_member(name):
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
            if "\n" in label or "\r" in label:
                # The same rule as for CSV labels: a model's labels are stored one a line.
                problems.add(
                    "layout",
                    f"{name!r}: the class folder name contains a line break",
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
            if not is_image_name(name):
                problems.add(
                    "not_image",
                    f"{name!r}: file name must end in {', '.join(IMAGE_EXTENSIONS)}",
                    member=name,
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
