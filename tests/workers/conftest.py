"""Fixtures for the workers tests: tiny datasets and a tiny local TF Hub module.

These tests need TensorFlow but no database; they are marked ``tf`` so that a quick run can
deselect them (``pytest -m "not tf"``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest

POSITIVE = ["good", "great", "love", "excellent", "nice", "happy"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "poor", "sad"]


def _make_text_rows(n_per_class: int = 24) -> list[tuple[str, str]]:
    rows = []
    for i in range(2 * n_per_class):
        label = "positive" if i % 2 == 0 else "negative"
        words = POSITIVE if label == "positive" else NEGATIVE
        text = f"{words[i % len(words)]} {words[(i // 2) % len(words)]} item tok{i}"
        rows.append((text, label))
    return rows


def _write_csv(path: Path, rows, *, header=("text", "label"), bom: bool = True) -> Path:
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def text_rows() -> list[tuple[str, str]]:
    """48 rows ``(text, label)``, 24 a class; row i carries the unique token ``tok{i}``."""
    return _make_text_rows()


@pytest.fixture(scope="session")
def write_csv():
    """``write_csv(path, rows, *, header=("text", "label"), bom=True) -> path``."""
    return _write_csv


def _digit_pngs(per_class: int = 8, classes=(0, 1, 7)) -> dict[str, list[tuple[str, bytes]]]:
    """Real 8×8 digit PNGs per class: ``{class: [(file name, PNG bytes)]}``.

    Made from scikit-learn's bundled copy of the UCI digits, the same source and pixel mapping
    (``round(v * 255 / 16)``) as the platform's demo archive digits_8x8.zip.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = {}
    for label in classes:
        rows = np.flatnonzero(digits.target == label)[:per_class]
        files = []
        for row in rows:
            pixels = np.round(digits.images[row] * 255 / 16).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels, mode="L").save(buf, format="PNG")
            files.append((f"digit_{row:04d}.png", buf.getvalue()))
        out[str(label)] = files
    return out


def _write_digits_zip(
    path: Path, *, per_class: int = 8, top: str | None = "digits", junk: bool = True
) -> Path:
    prefix = f"{top}/" if top else ""
    with zipfile.ZipFile(path, "w") as zf:
        if top:
            zf.writestr(f"{top}/", b"")
        for label, files in _digit_pngs(per_class).items():
            zf.writestr(f"{prefix}{label}/", b"")
            for name, data in files:
                zf.writestr(f"{prefix}{label}/{name}", data)
        if junk:
            zf.writestr(f"__MACOSX/{prefix}0/._{files[0][0]}", b"junk")
            zf.writestr(f"{prefix}0/.DS_Store", b"junk")
            zf.writestr(f"{prefix}.hidden/x.png", b"junk")
            zf.writestr(f"{prefix}1/notes.txt", b"not an image")
    return path


@pytest.fixture(scope="session")
def digit_pngs() -> dict[str, list[tuple[str, bytes]]]:
    """8 real digit PNGs for each of the classes 0, 1 and 7."""
    return _digit_pngs()


@pytest.fixture(scope="session")
def write_digits_zip():
    """``write_digits_zip(path, *, per_class=8, top="digits", junk=True) -> path``: classes
    0, 1, 7 under an optional top-level folder, plus __MACOSX, hidden and non-image junk."""
    return _write_digits_zip


@pytest.fixture(scope="session")
def png_to_jpeg():
    """``png_to_jpeg(png_bytes) -> jpeg_bytes``."""
    return _png_to_jpeg


def _png_to_jpeg(png: bytes) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, format="JPEG", quality=95)
    return buf.getvalue()


@pytest.fixture(scope="session")
def hub_module_path(tmp_path_factory) -> str:
    """A 32×32, alpha 0.35 MobileNetV2 feature-vector module, built by the management command."""
    from django.core.management import call_command

    from workers.management.commands.build_hub_module import Command

    path = str(tmp_path_factory.mktemp("hub") / "mobilenet_v2_035_32")
    out = io.StringIO()
    call_command(
        Command(), path, "--image-size", "32", "--alpha", "0.35", "--seed", "0", stdout=out
    )
    assert out.getvalue().strip() == path
    return path
