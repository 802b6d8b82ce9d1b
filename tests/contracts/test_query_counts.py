"""Every list costs a constant number of queries: the count at 5 rows equals the count at 50.

One test per /v1 list endpoint and per dashboard list page (and per list inside a page: the
home page's recent jobs and models, a dataset's jobs, the billing page's invoices, the members
page's invitations). Each seeds 5 rows, requests the
list (after one warm-up request, so per-process caches are full), seeds 45 more, requests it
again, and compares the captured query counts. Rows are written with the ORM (what the
services would leave behind) so the seeding itself is not what is measured.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from saas.apikeys.services import api_key_create
from saas.billing.models import Invoice
from saas.common.actor import Actor
from saas.datasets.models import Dataset
from saas.jobs.models import JobEvent, TrainingJob
from saas.metering.models import Meter, UsageEvent
from saas.registry.models import TrainedModel
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Invitation, Membership
from saas.tenancy.services import _user_for_email
from tests.conftest import set_plan_limits, small_text_rows, text_csv

pytestmark = pytest.mark.django_db

_seq = itertools.count(1)


def _dataset(org) -> Dataset:
    n = next(_seq)
    return Dataset.objects.for_tenant(org).create(
        organization=org,
        name=f"data-{n}.csv",
        task="text-classification",
        num_examples=24,
        classes={"negative": 12, "positive": 12},
        report={},
        size_bytes=100,
        sha256="0" * 64,
        storage_key=f"tenants/{org.pk}/datasets/x{n}/data.csv",
        text_column="text",
        label_column="label",
    )


_STATUSES = itertools.cycle(["queued", "running", "succeeded", "failed", "cancelled"])


def _job(org, dataset: Dataset, status: str | None = None) -> TrainingJob:
    status = status or next(_STATUSES)
    job = TrainingJob.objects.for_tenant(org).create(
        organization=org,
        dataset=dataset,
        task=dataset.task,
        base_model="tfidf-logreg",
        hyperparameters={"epochs": 2, "batch_size": 32},
        status=status,
        usage={"billing_reason": None, "cost_so_far": "0.01", "seconds_so_far": 1.0},
    )
    if status == "succeeded":
        _model(org, job)
    return job


def _model(org, job: TrainingJob) -> TrainedModel:
    return TrainedModel.objects.for_tenant(org).create(
        organization=org,
        job=job,
        task=job.task,
        base_model=job.base_model,
        classes=["negative", "positive"],
        metrics={"accuracy": 0.9, "macro_f1": 0.9},
        artifact_key="none",
        artifact_bytes=1234,
        artifact_sha256="0" * 64,
    )


# ---- seeders: ``seed(org, n)`` adds ``n`` rows of the listed kind --------------------------


def seed_datasets(acme, n: int) -> None:
    for _ in range(n):
        _dataset(acme.org)


def seed_jobs(acme, n: int) -> None:
    ds = _dataset(acme.org)
    for _ in range(n):
        _job(acme.org, ds)


def seed_queued_jobs(acme, n: int) -> None:
    """All queued: each has a queue position and a wait reason (the issue's 17 and 62)."""
    ds = _dataset(acme.org)
    for _ in range(n):
        _job(acme.org, ds, status="queued")


def seed_models(acme, n: int) -> None:
    ds = _dataset(acme.org)
    for _ in range(n):
        _job(acme.org, ds, status="succeeded")


def seed_events(acme, n: int) -> None:
    job = _events_job(acme)
    for i in range(n):
        JobEvent.objects.for_tenant(acme.org).create(
            organization=acme.org, job=job, type="epoch", message=f"Epoch {i}", data={"epoch": i}
        )


def _events_job(acme) -> TrainingJob:
    job = TrainingJob.objects.for_tenant(acme.org).filter(base_model="events").first()
    if job is None:
        job = _job(acme.org, _dataset(acme.org), status="running")
        TrainingJob.objects.for_tenant(acme.org).filter(pk=job.pk).update(base_model="events")
        job.base_model = "events"
    return job


def _detail_dataset(acme) -> Dataset:
    """The one dataset whose detail page is measured, its CSV stored (the page shows sample
    rows read from the file)."""
    ds = Dataset.objects.for_tenant(acme.org).filter(name="detail.csv").first()
    if ds is None:
        ds = _dataset(acme.org)
        Dataset.objects.for_tenant(acme.org).filter(pk=ds.pk).update(name="detail.csv")
        default_storage.save(ds.storage_key, ContentFile(text_csv(small_text_rows())))
    return ds


def seed_dataset_jobs(acme, n: int) -> None:
    """``n`` jobs of every status (succeeded ones with their model) on the measured dataset."""
    ds = _detail_dataset(acme)
    for _ in range(n):
        _job(acme.org, ds)


def _misclassified_job(acme) -> TrainingJob:
    job = TrainingJob.objects.for_tenant(acme.org).filter(base_model="mistakes").first()
    if job is None:
        job = _job(acme.org, _dataset(acme.org), status="succeeded")
        TrainingJob.objects.for_tenant(acme.org).filter(pk=job.pk).update(base_model="mistakes")
    return job


def seed_misclassified(acme, n: int) -> None:
    """``n`` more validation mistakes on the measured job (stored on its row, as completion
    leaves them)."""
    job = _misclassified_job(acme)
    mistakes = list(job.misclassified) + [
        {
            "input": f"text {next(_seq)}",
            "true_label": "positive",
            "predicted_label": "negative",
            "score": 0.9,
        }
        for _ in range(n)
    ]
    TrainingJob.objects.for_tenant(acme.org).filter(pk=job.pk).update(misclassified=mistakes)


def seed_api_keys(acme, n: int) -> None:
    for _ in range(n):
        api_key_create(
            organization=acme.org,
            name=f"k{next(_seq)}",
            created_by=acme.users["developer"],
            actor=Actor.system(),
        )


def seed_members(acme, n: int) -> None:
    for _ in range(n):
        user = _user_for_email(f"member{next(_seq)}@acme.test")
        Membership.objects.create(organization=acme.org, user=user, role="developer")


def seed_invitations(acme, n: int) -> None:
    for _ in range(n):
        i = next(_seq)
        Invitation.objects.for_tenant(acme.org).create(
            organization=acme.org,
            email=f"invitee{i}@example.test",
            role="developer",
            token_sha256=f"{i:064d}",
            invited_by=acme.users["owner"],
            expires_at=timezone.now() + datetime.timedelta(days=7),
        )


def seed_audit_events(acme, n: int) -> None:
    users = itertools.cycle(acme.users.values())
    for _ in range(n):
        audit_record(
            organization_id=acme.org.pk,
            action="dataset.deleted",
            actor=Actor(user_id=next(users).pk),
            target_type="dataset",
            target_id=f"ds_{next(_seq)}",
        )


def seed_invoices(acme, n: int) -> None:
    for _ in range(n):
        i = next(_seq)
        start = datetime.date(2000, 1, 1) + datetime.timedelta(days=31 * i)
        start = start.replace(day=1)
        Invoice.objects.for_tenant(acme.org).create(
            organization=acme.org,
            number=f"TY-{acme.org.slug}-{i:05d}",
            period_start=start,
            period_end=start + datetime.timedelta(days=28),
            currency="usd",
            subtotal=Decimal("1.00"),
            total=Decimal("1.00"),
            due_on=start + datetime.timedelta(days=40),
        )


def seed_usage(acme, n: int) -> None:
    """``n`` usage events on ``n`` different days of this month and the last (so the usage
    list and charts have ``n`` day rows, up to the days available)."""
    now = timezone.now()
    meters = itertools.cycle([Meter.PREDICTIONS, Meter.TRAINING_COMPUTE_SECONDS])
    for _ in range(n):
        i = next(_seq)
        UsageEvent.objects.for_tenant(acme.org).create(
            organization=acme.org,
            meter=next(meters),
            quantity=Decimal(1),
            unit="unit",
            occurred_at=now - datetime.timedelta(hours=i),
            source_type="prediction",
            source_id=f"pred_{i}",
            idempotency_key=f"prediction:pred_{i}",
        )


def _count(get: Callable[[], object]):
    with CaptureQueriesContext(connection) as ctx:
        response = get()
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    return len(ctx.captured_queries), response


def _constant(acme, seed, get) -> tuple[int, int, object]:
    """``(queries at 5 rows, queries at 50 rows, the response at 50)``."""
    seed(acme, 5)
    get()  # warm-up: sessions, content types, per-process caches
    at_5, _ = _count(get)
    seed(acme, 45)
    at_50, response = _count(get)
    return at_5, at_50, response


@pytest.fixture
def acme(acme, settings):
    set_plan_limits(requests_per_key=10**6, requests_per_organization=10**6)
    return acme


# ``*``: the endpoint refuses API keys (dashboard-session only), so the owner's session is used.
API_LISTS = {
    "datasets": (seed_datasets, lambda acme: "/v1/datasets"),
    "training-jobs": (seed_jobs, lambda acme: "/v1/training-jobs"),
    "training-jobs?status=queued": (
        seed_queued_jobs,
        lambda acme: "/v1/training-jobs?status=queued",
    ),
    "models": (seed_models, lambda acme: "/v1/models"),
    "events": (seed_events, lambda acme: f"/v1/training-jobs/{_events_job(acme).pk}/events"),
    "api-keys*": (seed_api_keys, lambda acme: "/v1/api-keys"),
    "members*": (seed_members, lambda acme: "/v1/members"),
    "invitations*": (seed_invitations, lambda acme: "/v1/invitations"),
    "audit-events*": (seed_audit_events, lambda acme: "/v1/audit-events"),
    "invoices*": (seed_invoices, lambda acme: "/v1/invoices"),
    "usage": (seed_usage, lambda acme: "/v1/usage"),
    "misclassified": (
        seed_misclassified,
        lambda acme: f"/v1/training-jobs/{_misclassified_job(acme).pk}/misclassified",
    ),
}


@pytest.mark.parametrize("name", list(API_LISTS))
def test_api_list_queries_do_not_grow_with_rows(acme, name):
    seed, path = API_LISTS[name]
    client = acme.session("owner") if name.endswith("*") else acme.key("owner")
    url = path(acme)
    url += ("&" if "?" in url else "?") + "limit=100"
    at_5, at_50, response = _constant(acme, seed, lambda: client.get(url))
    print(f"QUERIES /v1/{name.rstrip('*')}: 5 rows {at_5}, 50 rows {at_50}")
    assert at_50 == at_5
    if name != "usage":  # usage is one row per meter and day, not per event
        assert len(response.json()["data"]) >= 50


def test_api_lists_return_the_seeded_rows(acme):
    """The counts above are of real pages: 50 jobs (and their models) come back in one page."""
    seed_jobs(acme, 50)
    body = acme.key("owner").get("/v1/training-jobs", {"limit": 100}).json()
    assert len(body["data"]) == 50
    succeeded = [j for j in body["data"] if j["status"] == "succeeded"]
    assert succeeded and all(j["model"].startswith("mdl_") for j in succeeded)
    assert all(j["model"] is None for j in body["data"] if j["status"] != "succeeded")


PAGES = {
    "datasets": (seed_datasets, "/app/datasets"),
    "jobs": (seed_jobs, "/app/training"),
    "jobs?status=queued": (seed_queued_jobs, "/app/training?status=queued"),
    "models": (seed_models, "/app/models"),
    "keys": (seed_api_keys, "/app/api-keys"),
    "members*": (seed_members, "/app/members"),
    "billing/usage": (seed_usage, "/app/billing"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_dashboard_list_queries_do_not_grow_with_rows(acme, name):
    seed, path = PAGES[name]
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(acme.users["owner"])
    at_5, at_50, response = _constant(acme, seed, lambda: client.get(path))
    print(f"QUERIES {path}: 5 rows {at_5}, 50 rows {at_50}")
    assert at_50 == at_5
    if name != "billing/usage":  # a chart, not a table
        assert response.content.count(b"<tr") >= 50


# Lists inside pages, each shown up to a cap: ``(seed, path, rows the page shows at 50)``. The
# rows are counted by a marker of that list's table, so the test sees the seeded rows render.
PAGE_LISTS = {
    "home (recent jobs and models)": (seed_models, lambda acme: "/app/", 5),
    "dataset detail (its jobs)": (
        seed_dataset_jobs,
        lambda acme: f"/app/datasets/{_detail_dataset(acme).pk}",
        10,
    ),
    "billing (invoices)": (seed_invoices, lambda acme: "/app/billing", 24),
    "members (invitations)": (seed_invitations, lambda acme: "/app/members", 50),
}
_ROW_MARKERS = {
    "home (recent jobs and models)": b'href="/app/training/tj_',
    "dataset detail (its jobs)": b'href="/app/training/tj_',
    "billing (invoices)": b"TY-acme-",
    "members (invitations)": b"@example.test",
}


@pytest.mark.parametrize("name", list(PAGE_LISTS))
def test_lists_inside_pages_cost_queries_independent_of_rows(acme, name):
    seed, path, shown = PAGE_LISTS[name]
    client = Client(HTTP_ACCEPT="text/html")
    client.force_login(acme.users["owner"])
    url = path(acme)
    at_5, at_50, response = _constant(acme, seed, lambda: client.get(url))
    print(f"QUERIES {url}: 5 rows {at_5}, 50 rows {at_50}")
    assert at_50 == at_5
    assert response.content.count(_ROW_MARKERS[name]) >= shown
