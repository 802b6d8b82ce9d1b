"""Upload validation under its budgets: the worst uploads they admit, and the attack files.

Builds each file in memory (nothing is committed as a binary), validates it with the web
tier's own code (:mod:`saas.datasets.validation`, the default budgets from settings) in a
fresh subprocess, and prints per case: the outcome (admitted, or the status and budget of the
refusal), the validation wall time and CPU time (what the wall time is on an idle core; a
shared machine's load shows as the difference) and the subprocess's peak RSS (its baseline,
Django imported, is printed beside it).

Usage: ``python bench/upload_budgets.py [CASE ...]`` (all cases when none is named). No
database, broker or storage is touched.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")


def _png(size: tuple[int, int], mode: str = "L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    return buf.getvalue()


def _noise_jpeg(size: tuple[int, int], seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(
        buf, format="JPEG", quality=90
    )
    return buf.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, blob in members:
            zf.writestr(name, blob)
    return buf.getvalue()


def csv_attack() -> tuple[str, bytes]:
    """The reported attack: a 50 MB CSV of 5.9 M tiny rows."""
    rows = [b"text,label\n"]
    size = 11
    i = 0
    while size < 50 * 1024 * 1024 - 16:
        row = b"t%d,%d\n" % (i % 100000, i % 2)
        rows.append(row)
        size += len(row)
        i += 1
    return "text", b"".join(rows)


def csv_worst_admitted() -> tuple[str, bytes]:
    """As many rows as the budget admits (TRAINYARD_CSV_MAX_LINES), every text distinct, 100
    classes (the free plan's limit), filling most of the 50 MB upload limit."""
    from django.conf import settings

    n = settings.TRAINYARD_CSV_MAX_LINES - 1  # the header is a line
    pad = "x" * max(1, (45 * 1024 * 1024) // n - 24)
    body = "".join(f"row {i} {pad},c{i % 100}\n" for i in range(n))
    return "text", ("text,label\n" + body).encode()


def zip_attack() -> tuple[str, bytes]:
    """The reported attack: 1,300 blank 6000x6000 PNGs (about 45 MB)."""
    blob = _png((6000, 6000))
    return "image", _zip([(f"c{i % 2}/{i}.png", blob) for i in range(1300)])


def zip_attack_under_image_budget() -> tuple[str, bytes]:
    """The same attack with each image just under the per-image budget (4096x4096): the
    archive's pixel budget refuses it, from the headers."""
    blob = _png((4096, 4096))
    return "image", _zip([(f"c{i % 2}/{i}.png", blob) for i in range(1300)])


def zip_worst_admitted_big_images() -> tuple[str, bytes]:
    """Blank RGBA PNGs of 4096x4096 up to the archive's pixel budget: the most bytes decoded."""
    from django.conf import settings

    per = 4096 * 4096
    n = settings.TRAINYARD_ZIP_MAX_TOTAL_PIXELS // per
    blob = _png((4096, 4096), "RGBA")
    return "image", _zip([(f"c{i % 2}/{i}.png", blob) for i in range(n)])


def zip_worst_admitted_noise_jpegs() -> tuple[str, bytes]:
    """Noise JPEGs of 1024x768 (nothing compresses; the costliest decode per pixel) until the
    upload's 50 MB or the pixel budget is reached."""
    from django.conf import settings

    members, size, pixels, i = [], 0, 0, 0
    budget = settings.TRAINYARD_ZIP_MAX_TOTAL_PIXELS
    blobs = [_noise_jpeg((1024, 768), s) for s in range(8)]
    while True:
        blob = blobs[i % len(blobs)]
        if size + len(blob) > 49 * 1024 * 1024 or pixels + 1024 * 768 > budget:
            break
        members.append((f"c{i % 2}/{i}.jpg", blob))
        size, pixels, i = size + len(blob), pixels + 1024 * 768, i + 1
    return "image", _zip(members)


def zip_worst_admitted_many_entries() -> tuple[str, bytes]:
    """As many small (64x64) PNGs as the entry budget admits: the per-entry overhead."""
    from django.conf import settings

    n = settings.TRAINYARD_ZIP_MAX_ENTRIES
    blobs = [_png((64, 64)) for _ in range(1)]
    return "image", _zip([(f"c{i % 2}/{i}.png", blobs[0]) for i in range(n)])


CASES = {
    f.__name__: f
    for f in (
        csv_attack,
        csv_worst_admitted,
        zip_attack,
        zip_attack_under_image_budget,
        zip_worst_admitted_big_images,
        zip_worst_admitted_noise_jpegs,
        zip_worst_admitted_many_entries,
    )
}


def _peak_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, it does not carry the parent's peak
    across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name: str, kind: str, path: str) -> dict:
    """Validate one built case from its file, as a web process reads an upload Django spooled
    to disk; returns its figures."""
    import django

    django.setup()
    from django.conf import settings

    from saas.common.errors import DomainError
    from saas.datasets.validation import validate_image_zip, validate_text_csv

    f = open(path, "rb")  # noqa: SIM115 - open for the whole case
    baseline = _peak_mib()
    start = time.perf_counter()
    cpu_start = time.process_time()
    try:
        if kind == "text":
            v = validate_text_csv(f, max_classes=100)
        else:
            v = validate_image_zip(f, max_classes=100)
        outcome = {"admitted": True, "examples": v.num_examples, "classes": len(v.classes)}
    except DomainError as exc:
        outcome = {"admitted": False, "status": exc.status, **exc.extra}
        outcome.pop("report", None)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    return {
        "case": name,
        "upload_mib": round(os.path.getsize(path) / 2**20, 1),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mib": round(_peak_mib(), 1),
        "baseline_rss_mib": round(baseline, 1),
        "budgets": {
            "csv_lines": settings.TRAINYARD_CSV_MAX_LINES,
            "image_pixels": settings.TRAINYARD_DATASET_MAX_IMAGE_PIXELS,
            "archive_pixels": settings.TRAINYARD_ZIP_MAX_TOTAL_PIXELS,
            "archive_entries": settings.TRAINYARD_ZIP_MAX_ENTRIES,
        },
        **outcome,
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["--case"]:
        print(json.dumps(run_case(*argv[1:4])))
        return
    import django

    django.setup()
    for name in argv or list(CASES):
        kind, data = CASES[name]()
        with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
            tmp.write(data)
            tmp.flush()
            del data
            out = subprocess.run(
                [sys.executable, __file__, "--case", name, kind, tmp.name],
                capture_output=True,
                text=True,
                check=True,
            )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        verdict = (
            f"admitted ({r['examples']} examples, {r['classes']} classes)"
            if r["admitted"]
            else f"refused {r['status']} {r.get('budget', r.get('limit'))} (value {r.get('value', r.get('count'))})"
        )
        print(
            f"{name:34s} {r['upload_mib']:6.1f} MiB  {r['seconds']:7.3f} s "
            f"(CPU {r['cpu_seconds']:6.3f} s)  "
            f"peak RSS {r['peak_rss_mib']:7.1f} MiB (baseline {r['baseline_rss_mib']:.1f})  {verdict}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
