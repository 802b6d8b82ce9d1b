"""RSS of the training worker's pool child over N tiny trainings, with and without recycling.

Starts a real Celery worker on ``training-cpu`` (``-c 1``) with the given extra flags, submits
N tiny text jobs one after another through the real services (a throwaway tenant in the
database of ``DATABASE_URL``, the broker of ``REDIS_URL``), and after each job prints the pool
child's pid and resident set size (``/proc``). Ends with the first, last and peak RSS and how
many pool children served the N jobs.

    python bench/training_child_memory.py --jobs 20
    python bench/training_child_memory.py --jobs 20 -- --max-memory-per-child 1200000
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

import django  # noqa: E402

django.setup()

# isort: split

from saas.common.actor import Actor  # noqa: E402
from saas.datasets.services import dataset_create  # noqa: E402
from saas.jobs import services as jobs  # noqa: E402
from saas.jobs.models import TrainingJob  # noqa: E402
from saas.tenancy.services.organizations import organization_create  # noqa: E402


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pool_children(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children += [int(c) for c in text]
    return children


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("worker_flags", nargs="*", help="extra celery worker flags (after --)")
    args = parser.parse_args()

    slug = f"mem-{uuid.uuid4().hex[:8]}"
    org = organization_create(
        slug=slug, name=slug, owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    rows = "\n".join(
        f"{'good great' if i % 2 else 'bad awful'} item tok{i},{'pos' if i % 2 else 'neg'}"
        for i in range(60)
    )
    data = f"text,label\n{rows}\n".encode()
    ds = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="text-classification",
        name="tiny.csv",
        actor=Actor.system(),
    )
    argv = [
        str(ROOT / ".venv/bin/celery"), "-A", "workers.celery_app", "worker", "-Q",
        "training-cpu", "-c", "1", "-n", f"{slug}@%h", "--without-mingle", "--without-gossip",
        "--loglevel", "WARNING", *args.worker_flags,
    ]  # fmt: skip
    log = open(ROOT / "var" / f"{slug}.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    print(f"worker flags: {' '.join(args.worker_flags) or '(none)'}")
    samples: list[tuple[int, int]] = []
    try:
        for n in range(1, args.jobs + 1):
            job = jobs.training_job_create(
                organization=org,
                dataset=ds,
                actor=Actor.system(),
                hyperparameters={"epochs": args.epochs},
            )
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                status = TrainingJob.objects.for_tenant(org).get(pk=job.pk).status
                if status in TrainingJob.TERMINAL_STATUSES:
                    break
                time.sleep(0.2)
            else:
                raise SystemExit(f"job {n} did not finish")
            time.sleep(1.0)  # a recycled child is replaced after its task: let that happen
            while not (children := pool_children(worker.pid)):
                time.sleep(0.2)
            child = children[0]
            kib = rss_kib(child)
            samples.append((child, kib))
            print(f"job {n:2d} {status:9s} child {child} rss {kib / 1024:7.1f} MiB", flush=True)
    finally:
        worker.terminate()
        worker.wait(60)
    values = [k for _, k in samples]
    print(
        f"first {values[0] / 1024:.1f} MiB, last {values[-1] / 1024:.1f} MiB, "
        f"peak {max(values) / 1024:.1f} MiB, pool children used {len({c for c, _ in samples})}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
