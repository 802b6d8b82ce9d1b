"""Plans are the one source of truth: the billing account says which plan an organisation is
on, and the plan's row holds its limits (rates, running and active training jobs), seeded by a
migration and editable in the admin."""

from __future__ import annotations

import ast
import importlib
import json
import pathlib

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client

from saas.billing import seed as seeds
from saas.billing.models import Plan
from saas.billing.selectors import PlanLimits, plan_limits_get
from saas.billing.services.accounts import billing_plan_change
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.tenancy.models import Organization
from saas.tenancy.services import organization_create
from tests.conftest import set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db

SAAS = pathlib.Path(__file__).resolve().parents[3] / "saas"
LIMIT_FIELDS = (
    "requests_per_key",
    "requests_per_organization",
    "max_running_jobs",
    "max_active_jobs",
)
# The admin's limits: those of migration 0004 above, and the class limit (0007).
ADMIN_LIMIT_FIELDS = (*LIMIT_FIELDS, "max_classes")


def _limits(plan: Plan) -> dict[str, int]:
    return {f: getattr(plan, f) for f in LIMIT_FIELDS}


# --- one place answers the plan ---------------------------------------------------------------


def test_changing_the_plan_moves_the_rate_limit_and_the_job_caps_at_once(acme):
    set_plan_limits("free", requests_per_key=1, max_active_jobs=2, max_running_jobs=1)
    set_plan_limits("pro", requests_per_key=10**6, max_active_jobs=3, max_running_jobs=2)
    set_plan_limits(requests_per_organization=10**6)
    a = acme.key("owner")
    ds = upload(a, text_csv(small_text_rows())).json()
    b = acme.key("owner")  # a fresh bucket for the jobs below
    set_plan_limits("free", requests_per_key=10**6)
    first = b.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    second = b.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    refused = b.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert refused.status_code == 429 and refused.json()["limit"] == 2
    assert "(free)" in refused.json()["detail"]
    TrainingJob.objects.for_tenant(acme.org).filter(pk=first["id"]).update(status="running")
    assert b.get(f"/v1/training-jobs/{second['id']}").json()["wait_reason"] == "tenant_limit"
    with pytest.raises(jobs.Deferred):
        jobs.training_job_start(job_id=second["id"])
    set_plan_limits("free", requests_per_key=1)
    c = acme.key("owner")
    assert c.get("/v1/datasets")["RateLimit-Limit"] == "1"
    assert c.get("/v1/datasets").status_code == 429

    billing_plan_change(organization=acme.org, plan_code="pro", actor=Actor.system())

    # The next request reads the new plan, for every limit alike.
    moved = c.get("/v1/datasets")
    assert moved.status_code == 200 and moved["RateLimit-Limit"] == str(10**6)
    assert c.get(f"/v1/training-jobs/{second['id']}").json()["wait_reason"] == "capacity"
    listed = {j["id"]: j for j in c.get("/v1/training-jobs").json()["data"]}
    assert listed[second["id"]]["wait_reason"] == "capacity"
    assert c.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").status_code == 201
    assert jobs.training_job_start(job_id=second["id"]) is not None  # no longer deferred
    assert plan_limits_get(organization=acme.org) == PlanLimits(
        plan="pro",
        requests_per_key=10**6,
        requests_per_organization=10**6,
        max_running_jobs=2,
        max_active_jobs=3,
        max_classes=1000,
    )


def test_editing_a_plan_moves_every_organisation_on_it(acme, globex):
    billing_plan_change(organization=globex.org, plan_code="pro", actor=Actor.system())
    set_plan_limits("free", requests_per_key=2, requests_per_organization=10**6)
    set_plan_limits("pro", requests_per_key=9, requests_per_organization=10**6)
    assert acme.key("owner").get("/v1/datasets")["RateLimit-Limit"] == "2"
    assert globex.key("owner").get("/v1/datasets")["RateLimit-Limit"] == "9"


def test_the_dashboard_shows_and_enforces_the_accounts_plan(acme):
    owner = acme.session("owner")
    assert "free plan" in owner.get("/app/").content.decode()
    set_plan_limits("free", requests_per_key=1, requests_per_organization=10**6)
    set_plan_limits("pro", requests_per_key=10**6, requests_per_organization=10**6)
    cancel = "/app/training/tj_missing/cancel"  # a POST: rate-limited, then a 404 page
    assert owner.post(cancel).status_code == 404
    assert owner.post(cancel).status_code == 429
    billing_plan_change(organization=acme.org, plan_code="pro", actor=Actor.system())
    assert "pro plan" in owner.get("/app/").content.decode()
    assert owner.post(cancel).status_code == 404


def test_the_plan_is_not_stored_on_the_organisation():
    assert "plan" not in {f.name for f in Organization._meta.get_fields()}


def test_organisation_creation_opens_the_account_on_the_named_plan(db):
    org = organization_create(
        slug="ent", name="Ent", owner_email="o@ent.test", plan="enterprise", actor=Actor.system()
    )
    assert plan_limits_get(organization=org).plan == "enterprise"
    with pytest.raises(ValidationFailed) as refused:
        organization_create(
            slug="nope", name="Nope", owner_email="o@nope.test", plan="gold", actor=Actor.system()
        )
    assert refused.value.errors[0]["message"] == "no plan 'gold'; one of free, pro, enterprise"
    assert not Organization.objects.filter(slug="nope").exists()  # rolled back with it


def test_plan_limits_read_is_one_query(acme, django_assert_num_queries):
    with django_assert_num_queries(1):
        plan_limits_get(organization=acme.org)


def test_the_layers_below_billing_neither_import_it_nor_read_limits_from_settings():
    def imports(path: pathlib.Path):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                yield from (a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                yield node.module

    below = [p for package in ("limits", "tenancy") for p in (SAAS / package).rglob("*.py")]
    found = {f"{p.relative_to(SAAS)}: {m}" for p in below for m in imports(p)}
    assert {f for f in found if "saas.billing" in f} == set()
    assert [p for p in below if "TRAINYARD_PLAN_LIMITS" in p.read_text()] == []
    assert not (SAAS / "tenancy" / "plans.py").exists()


# --- the limits migration ---------------------------------------------------------------------


def test_the_migrated_database_has_every_seeded_plan_with_its_limits():
    assert set(seeds.LIMITS) == set(seeds.PLANS)
    plans = {p.code: {f: getattr(p, f) for f in seeds.LIMITS[p.code]} for p in Plan.objects.all()}
    assert plans == seeds.LIMITS


def _migration():
    return importlib.import_module("saas.billing.migrations.0004_plan_limits")


def _state():
    return MigrationLoader(connection).project_state(("billing", "0004_plan_limits")).apps


def test_the_limits_migration_seeds_every_plan_with_the_former_settings_values(monkeypatch):
    monkeypatch.delenv("TRAINYARD_PLAN_LIMITS", raising=False)
    migration = _migration()
    # The seed carries on what it set (the prediction limits came later, with 0006).
    assert migration.DEFAULT_LIMITS == {
        code: {f: limits[f] for f in migration.FIELDS} for code, limits in seeds.LIMITS.items()
    }
    Plan.objects.update(  # as right after the columns were added: the column defaults
        requests_per_key=120, requests_per_organization=300, max_running_jobs=1, max_active_jobs=10
    )
    migration.forwards(_state(), None)
    assert {p.code: _limits(p) for p in Plan.objects.all()} == migration.DEFAULT_LIMITS


def test_the_limits_migration_keeps_an_installations_configured_limits(monkeypatch):
    monkeypatch.setenv(
        "TRAINYARD_PLAN_LIMITS",
        json.dumps({"free": {"requests_per_key": 7}, "pro": {"max_running_jobs": 4}}),
    )
    migration = _migration()
    Plan.objects.filter(code="enterprise").update(max_active_jobs=123)
    migration.forwards(_state(), None)
    free, pro, enterprise = (Plan.objects.get(code=c) for c in ("free", "pro", "enterprise"))
    assert _limits(free) == {**migration.DEFAULT_LIMITS["free"], "requests_per_key": 7}
    # A plan the setting named but did not complete gets free's values, as plan_limits did.
    assert _limits(pro) == {**migration.DEFAULT_LIMITS["free"], "max_running_jobs": 4}
    assert enterprise.max_active_jobs == 123  # a plan the setting did not name is untouched


def test_plans_reseeded_after_a_flush_carry_their_limits(db):
    Plan.objects.all().delete()  # what a transactional test's flush leaves
    org = organization_create(
        slug="seedy", name="Seedy", owner_email="o@seedy.test", plan="pro", actor=Actor.system()
    )
    limits = plan_limits_get(organization=org)
    assert (limits.plan, limits.max_active_jobs) == ("pro", seeds.LIMITS["pro"]["max_active_jobs"])


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def console(db) -> Client:
    c = Client()
    c.force_login(
        get_user_model().objects.create_superuser("plans-op", "plans-op@trainyard.test", "pw")
    )
    return c


def _plan_form(plan: Plan, **changes) -> dict:
    form = {
        "code": plan.code,
        "name": plan.name,
        "currency": plan.currency,
        "monthly_fee": str(plan.monthly_fee),
        "stripe_price_id": plan.stripe_price_id,
        **{f: str(getattr(plan, f)) for f in ADMIN_LIMIT_FIELDS},
        # The prices inline, left as it is.
        "prices-TOTAL_FORMS": "0",
        "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
    }
    if plan.hard_limits:
        form["hard_limits"] = "on"
    if plan.contract_based:
        form["contract_based"] = "on"
    form.update({k: str(v) for k, v in changes.items()})
    return form


def test_the_admin_edits_a_plans_limits_and_the_next_request_uses_them(console, acme):
    free = Plan.objects.get(code="free")
    url = f"/admin/billing/plan/{quote(free.pk)}/change/"
    page = console.get(url)
    assert page.status_code == 200
    for field in ADMIN_LIMIT_FIELDS:
        assert f'name="{field}"' in page.content.decode()
    prices = free.prices.count()
    r = console.post(
        url,
        _plan_form(
            free,
            requests_per_key=4,
            requests_per_organization=40,
            max_running_jobs=3,
            max_active_jobs=30,
        ),
    )
    assert r.status_code == 302, r.content.decode()[:2000]
    free.refresh_from_db()
    assert _limits(free) == {
        "requests_per_key": 4,
        "requests_per_organization": 40,
        "max_running_jobs": 3,
        "max_active_jobs": 30,
    }
    assert free.max_classes == 100
    assert free.prices.count() == prices
    assert acme.key("owner").get("/v1/datasets")["RateLimit-Limit"] == "4"
    assert console.get("/admin/billing/plan/").status_code == 200  # the list shows limits too


def test_the_admin_refuses_a_rate_limit_below_one(console):
    free = Plan.objects.get(code="free")
    before = _limits(free)
    r = console.post(
        f"/admin/billing/plan/{quote(free.pk)}/change/", _plan_form(free, requests_per_key=0)
    )
    assert r.status_code == 200 and "errornote" in r.content.decode()
    free.refresh_from_db()
    assert _limits(free) == before


def test_the_prediction_limits_migration_seeds_the_seeds_values():
    migration = importlib.import_module("saas.billing.migrations.0006_plan_prediction_limits")
    assert {
        code: (limits["predictions_per_key"], limits["predictions_per_organization"])
        for code, limits in seeds.LIMITS.items()
    } == migration.VALUES
