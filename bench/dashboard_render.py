"""Server-side render time of every dashboard page (median and 90th percentile, milliseconds).

Builds one organisation with realistic content — the shipped 3000-row sentiment dataset, a
succeeded 10-epoch job with metrics and its model, 3 API keys, 5 members, a month of usage —
then requests each page ``N`` times through Django's test client as its owner and reads the
``Server-Timing`` header (the whole middleware stack: session, auth, view, template).

Usage: ``python bench/dashboard_render.py [N]`` (uses ``DATABASE_URL``; SQLite under var/ if
unset). Nothing leaves the process: no broker message is sent.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

import django  # noqa: E402

django.setup()

from django.core.files import File  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from saas.apikeys.services import api_key_create  # noqa: E402
from saas.common.actor import Actor  # noqa: E402
from saas.datasets.services import dataset_create  # noqa: E402
from saas.jobs.models import JobEvent, TrainingJob  # noqa: E402
from saas.metering.services import usage_record  # noqa: E402
from saas.registry.models import TrainedModel  # noqa: E402
from saas.tenancy.models import Membership  # noqa: E402
from saas.tenancy.services import _user_for_email, organization_create  # noqa: E402

SENTIMENT = ROOT / "data/text/sentiment_labelled_sentences.csv"


def build():
    slug = f"bench-{time.time_ns()}"
    org = organization_create(
        slug=slug, name="Bench Corp", owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    owner = Membership.objects.get(organization=org).user
    for role in ("admin", "developer", "viewer", "billing"):
        Membership.objects.create(
            organization=org, user=_user_for_email(f"{role}@{slug}.test"), role=role
        )
    with SENTIMENT.open("rb") as fh:
        ds = dataset_create(
            organization=org,
            file=File(fh, name="sentiment.csv"),
            size=SENTIMENT.stat().st_size,
            task="text-classification",
            name="sentiment.csv",
            actor=Actor(user_id=owner.pk),
        )
    classes = ["negative", "positive"]
    metrics = {
        "accuracy": 0.832,
        "macro_f1": 0.831,
        "per_class": {
            c: {"precision": 0.83, "recall": 0.83, "f1": 0.83, "support": 300} for c in classes
        },
        "confusion_matrix": {"labels": classes, "matrix": [[250, 50], [51, 249]]},
    }
    job = TrainingJob.objects.for_tenant(org).create(
        organization=org,
        dataset=ds,
        task=ds.task,
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 10, "batch_size": 32, "learning_rate": 0.005},
        status="succeeded",
        epoch=10,
        metrics=metrics,
        usage={"charge": "0.00", "wall_seconds": 11.2},
    )
    for e in range(1, 11):
        JobEvent.objects.for_tenant(org).create(
            organization=org,
            job=job,
            type="epoch",
            message=f"Epoch {e}/10",
            data={
                "epoch": e,
                "loss": 0.7 / e,
                "accuracy": 0.5 + e / 25,
                "val_loss": 0.72 / e,
                "val_accuracy": 0.5 + e / 30,
            },
        )
    model = TrainedModel.objects.for_tenant(org).create(
        organization=org,
        job=job,
        task=ds.task,
        base_model=job.base_model,
        classes=classes,
        metrics=metrics,
        artifact_key="none",
        artifact_bytes=605_000,
        artifact_sha256="0" * 64,
    )
    for i in range(3):
        api_key_create(organization=org, name=f"key {i}", created_by=owner, actor=Actor.system())
    now = timezone.now()
    start = now.replace(day=1, hour=1)
    for day in range((now - start).days + 1):
        for meter, qty in (("predictions", 120), ("training_compute_seconds", 40)):
            usage_record(
                organization_id=org.pk,
                meter=meter,
                quantity=qty,
                occurred_at=start + datetime.timedelta(days=day),
                source_type="bench",
                source_id=f"{meter}-{day}",
            )
    return owner, ds, job, model


def main(n: int = 30) -> None:
    call_command("migrate", verbosity=0)
    owner, ds, job, model = build()
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(owner)
    pages = {
        "Overview": "/app/",
        "Datasets": "/app/datasets",
        "Dataset (3000 rows)": f"/app/datasets/{ds.pk}",
        "Upload": "/app/datasets/new",
        "Training jobs": "/app/training",
        "New training job (with estimate)": f"/app/training/new?dataset={ds.pk}",
        "Job (10 epochs, metrics)": f"/app/training/{job.pk}",
        "Job live fragment (htmx poll)": f"/app/training/{job.pk}?fragment=live",
        "Models": "/app/models",
        "Model (try it, snippets)": f"/app/models/{model.pk}",
        "API keys": "/app/api-keys",
        "Members": "/app/members",
        "Usage & billing": "/app/billing",
    }
    anonymous = Client(HTTP_ACCEPT="text/html")
    print(f"{'page':36} {'median ms':>10} {'p90 ms':>8}  (n={n}, {django.db.connection.vendor})")
    for name, url in [*pages.items(), ("Log in", "/login"), ("Sign up", "/signup")]:
        c = anonymous if url in ("/login", "/signup") else client
        headers = {"HTTP_HX_REQUEST": "true"} if "fragment" in url else {}
        samples = []
        for _ in range(n):
            r = c.get(url, **headers)
            assert r.status_code == 200, (url, r.status_code)
            samples.append(float(r["Server-Timing"].split("dur=")[1]))
        samples.sort()
        p90 = samples[int(0.9 * (len(samples) - 1))]
        print(f"{name:36} {statistics.median(samples):10.1f} {p90:8.1f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
