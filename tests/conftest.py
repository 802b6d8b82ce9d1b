"""Shared fixtures: organisations, API keys and a DRF client per tenant.

Tests run against real PostgreSQL and Redis (``make test`` sets ``DATABASE_URL`` and
``REDIS_URL``). Each test's storage goes to a temporary directory.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from saas.apikeys.services import api_key_create
from saas.billing.models import Plan, PlanPrice, RateCard
from saas.billing.seed import seed
from saas.common.actor import Actor
from saas.tenancy.models import Membership
from saas.tenancy.services import _user_for_email, organization_create


def _non_serialized_transactional(item: pytest.Item) -> bool:
    """A transactional test (marker ``transaction=True``, ``transactional_db`` or
    ``live_server``) without ``serialized_rollback``."""
    marker = item.get_closest_marker("django_db")
    transaction = serialized = False
    if marker is not None:
        transaction = bool(
            marker.kwargs.get("transaction", marker.args[0] if marker.args else False)
        )
        serialized = bool(marker.kwargs.get("serialized_rollback", False))
    fixtures = getattr(item, "fixturenames", [])
    transaction = transaction or "transactional_db" in fixtures or "live_server" in fixtures
    serialized = serialized or "django_db_serialized_rollback" in fixtures
    return transaction and not serialized


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """After pytest-django's ordering (database tests, then transactional ones, then the
    rest), two stable moves:

    - Within the transactional tests, those with ``serialized_rollback`` first. A
      transactional test without it flushes the database at teardown and lets Django
      re-create the content types and permissions (new ids); a ``serialized_rollback`` test
      after it then restores the migrated rows over them and fails on duplicate content
      types. (Two such failures came from a new transactional test that sorted before
      tests/saas/api.) The ones after a serialized test start from an empty database, and
      seed what they need.
    - The end-to-end tests last. Their web and worker processes stay up for a whole module
      and write to the test database outside any test's transaction (Django creates content
      types on demand, beat runs tasks), so a ``serialized_rollback`` test after them would
      find rows where it expects a flushed database. Last is also where slow tests belong.
    """
    items.sort(key=_non_serialized_transactional)  # stable: only moves those after the rest
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings):
    """Each test starts with full buckets (rate-limit state lives in Redis). Up here, not in
    one folder's conftest, since the tests that need it (tenancy, limits, the isolation walk)
    live in several folders."""
    import redis

    r = redis.Redis.from_url(settings.REDIS_URL)
    for k in r.scan_iter("rl:*"):
        r.delete(k)


@pytest.fixture(scope="session")
def closed_port():
    """A local port bound but never listening: connecting to it is refused at once, and no
    other process (another helper's ``serve`` on the default 8001) can take it meanwhile."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(autouse=True)
def _no_data_plane(settings, closed_port):
    """The web tier forwards predictions to ``TRAINYARD_SERVE_URL``; unless a test starts a
    data plane and points there, nothing answers (a 503), whatever runs on the default port."""
    settings.TRAINYARD_SERVE_URL = f"http://127.0.0.1:{closed_port}"


@pytest.fixture(autouse=True)
def _no_request_cache(settings):
    """The request path's per-process caches (API keys, plan limits: at most 1 s stale) are off:
    tests change a row and send the next request at once. tests/saas/api/test_auth_cache.py
    turns them on to test the bound itself."""
    settings.TRAINYARD_REQUEST_CACHE_SECONDS = 0


@pytest.fixture(autouse=True)
def _storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "storage"
    settings.TRAINYARD_MODEL_CACHE_DIR = tmp_path / "model-cache"


class Tenant:
    def __init__(self, org, key: str):
        self.org = org
        self.key = key
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")


def make_tenant(slug: str, scopes=None) -> Tenant:
    org = organization_create(
        slug=slug, name=slug.title(), owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    issued = api_key_create(organization=org, name="test", scopes=scopes, actor=Actor.system())
    return Tenant(org, issued.secret)


@pytest.fixture
def tenant(db) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return make_tenant("globex")


ROLES = ["owner", "admin", "developer", "viewer", "billing"]


class Org:
    """An organisation with one user of every role; ``session(role)`` and ``key(role)`` clients."""

    def __init__(self, slug: str):
        self.org = organization_create(
            slug=slug, name=slug, owner_email=f"owner@{slug}.test", actor=Actor.system()
        )
        self.users = {"owner": Membership.objects.get(organization=self.org).user}
        for role in ROLES[1:]:
            user = _user_for_email(f"{role}@{slug}.test")
            Membership.objects.create(organization=self.org, user=user, role=role)
            self.users[role] = user

    def session(self, role: str) -> APIClient:
        c = APIClient()
        c.force_login(self.users[role])
        return c

    def key(self, role: str = "owner", scopes=None) -> APIClient:
        issued = api_key_create(
            organization=self.org,
            name=f"{role} key",
            scopes=scopes,
            created_by=self.users[role],
            actor=Actor.system(),
        )
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        c.api_key = issued.api_key
        return c


@pytest.fixture
def acme(db) -> Org:
    return Org("acme")


@pytest.fixture
def globex(db) -> Org:
    return Org("globex")


def set_plan_limits(*codes: str, **limits: int) -> None:
    """Change the limits of the plans ``codes`` (all plans when none is named) on their
    ``Plan`` rows, where the limits live (the test's transaction undoes it). Re-seeds the plans
    first if a flush emptied the table."""
    if not Plan.objects.exists():
        seed(Plan, PlanPrice, RateCard)
    plans = Plan.objects.filter(code__in=codes) if codes else Plan.objects.all()
    assert plans.update(**limits) >= max(1, len(codes))


def text_csv(rows: list[tuple[str, str]], header: str = "text,label") -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header.split(","))
    w.writerows(rows)
    return buf.getvalue().encode()


def small_text_rows(n_per_class: int = 12) -> list[tuple[str, str]]:
    good = ["great film", "loved it", "excellent value", "works well", "very good", "superb acting"]
    bad = ["terrible film", "hated it", "awful value", "broke quickly", "very bad", "poor acting"]
    rows = []
    for i in range(n_per_class):
        rows.append((f"{good[i % len(good)]} {i}", "positive"))
        rows.append((f"{bad[i % len(bad)]} {i}", "negative"))
    return rows


def png_bytes(value: int = 0, size: tuple[int, int] = (8, 8)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, color=value).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, blob in files.items():
            zf.writestr(name, blob)
    return buf.getvalue()


def upload(
    client, data: bytes, *, task: str = "text-classification", name: str = "data.csv", **extra
):
    f = io.BytesIO(data)
    f.name = name
    return client.post("/v1/datasets", {"file": f, "task": task, **extra}, format="multipart")


os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


@pytest.fixture
def operator():
    """A Django superuser: an operator of the admin."""
    return get_user_model().objects.create_superuser(
        username="ops@trainyard.test", email="ops@trainyard.test", password="x-Secret-123"
    )


@pytest.fixture
def console(operator) -> Client:
    """A client signed in to the admin as :func:`operator`."""
    c = Client()
    c.force_login(operator)
    return c


class LogLines:
    """What the root logger's handler writes, formatted as in production (JSON lines by
    ``saas.common.logs.formatter``), read back: :meth:`records` parses each line."""

    def __init__(self) -> None:
        import logging

        from saas.common.logs import formatter

        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter("json"))

    def attach(self) -> None:
        """(Re-)attach to the root logger: a ``dictConfig`` (a Celery worker's start-up
        applies Django's ``LOGGING``) replaces the root's handlers."""
        import logging

        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)

    def detach(self) -> None:
        import logging

        logging.getLogger().removeHandler(self.handler)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self, **match) -> list[dict]:
        """Every line as a dict (each must be one JSON object), those with ``match``'s items."""
        import json

        out = [json.loads(line) for line in self.text.splitlines() if line.strip()]
        return [r for r in out if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def log_lines():
    """The log lines written during the test, as the production formatter renders them."""
    capture = LogLines()
    capture.attach()
    try:
        yield capture
    finally:
        capture.detach()
