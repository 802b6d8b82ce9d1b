"""Billing accounts: created with the organisation, never by a read; plan changes through the
service with an audit event; billing imports neither jobs, inference nor HTTP."""

from __future__ import annotations

import ast
import contextlib
import datetime
import importlib
import pathlib

import pytest
from django.db import connection, transaction
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext

from saas.billing import selectors
from saas.billing.models import BillingAccount, Invoice
from saas.billing.services.accounts import billing_account_ensure, billing_plan_change
from saas.billing.services.period_close import period_close
from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.models import AuditEvent, Organization
from saas.tenancy.services import account_signup, organization_create

BILLING = pathlib.Path(__file__).resolve().parents[3] / "saas" / "billing"
WRITES = ("INSERT", "UPDATE", "DELETE")


def _writes(ctx: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith(WRITES)]


# --- the account is ensured with the organisation ------------------------------------------


def test_organisation_created_through_tenancy_has_its_account(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        org = organization_create(
            slug="fresh", name="Fresh", owner_email="o@fresh.test", actor=Actor.system()
        )
    account = BillingAccount.objects.for_tenant(org).get()
    assert account.plan.code == "free" and account.status == "active"
    assert callbacks == []  # a free plan has nothing to set up in Stripe


def test_paying_organisation_schedules_its_stripe_subscription_after_commit(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        org = organization_create(
            slug="payer", name="Payer", owner_email="o@payer.test", plan="pro", actor=Actor.system()
        )
    assert BillingAccount.objects.for_tenant(org).get().plan.code == "pro"
    assert len(callbacks) == 1  # Stripe is off in tests: the callback runs and does nothing


def test_opening_the_account_is_audited_for_the_system(db):
    org = organization_create(
        slug="audited", name="Audited", owner_email="o@audited.test", plan="pro", actor=Actor()
    )
    account = BillingAccount.objects.for_tenant(org).get()
    event = AuditEvent.objects.for_tenant(org).get(action="billing_account.created")
    assert (event.target_type, event.target_id, event.data) == (
        "billing_account",
        str(account.pk),
        {"plan": "pro"},
    )
    assert (event.actor_user_id, event.actor_api_key_id) == (None, None)


def test_ensuring_a_missing_account_records_its_actor_and_an_existing_one_nothing(acme):
    BillingAccount.objects.for_tenant(acme.org).delete()
    AuditEvent.objects.for_tenant(acme.org).filter(action="billing_account.created").delete()
    actor = Actor(user_id=acme.users["owner"].pk, ip="10.0.0.2")
    account = billing_account_ensure(organization=acme.org, actor=actor)
    again = billing_account_ensure(organization=acme.org, actor=Actor.system())
    assert again.pk == account.pk
    (event,) = AuditEvent.objects.for_tenant(acme.org).filter(action="billing_account.created")
    assert (event.target_id, event.actor_user_id, event.ip) == (
        str(account.pk),
        actor.user_id,
        "10.0.0.2",
    )


def test_sign_up_creates_the_account(db):
    membership = account_signup(
        email="new@signup.test",
        password="a long passphrase 42",
        organization_name="New Co",
        actor=Actor(),
    )
    account = selectors.billing_account_get(organization=membership.organization)
    assert account.plan.code == "free"


def test_account_rolls_back_with_its_organisation(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        org = organization_create(
            slug="gone", name="Gone", owner_email="o@gone.test", actor=Actor.system()
        )
        raise RuntimeError("the signup failed later")
    assert not Organization.objects.filter(pk=org.pk).exists()
    assert not BillingAccount.objects.unscoped_all_tenants().filter(organization_id=org.pk).exists()


@contextlib.contextmanager
def _organization_plan_column(values: dict[str, str]):
    """Put back the dropped ``tenancy_organization.plan`` column (tenancy 0003) with
    ``{organization id: plan code}``, for running the migrations that read it against this
    database. PostgreSQL's DDL is transactional, so the test's rollback removes it again."""
    with connection.cursor() as cursor:
        # Deferred foreign-key checks pending on the table would make ALTER TABLE refuse.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE tenancy_organization ADD COLUMN plan varchar(32) NOT NULL DEFAULT 'free'"
        )
        for org_id, code in values.items():
            cursor.execute(
                "UPDATE tenancy_organization SET plan = %s WHERE id = %s", [code, org_id]
            )
        yield


def _migration(name: str):
    return importlib.import_module(f"saas.billing.migrations.{name}")


def _state(app: str, name: str):
    return MigrationLoader(connection).project_state((app, name)).apps


def test_data_migration_creates_accounts_for_existing_organisations(db):
    org = organization_create(
        slug="old", name="Old", owner_email="o@old.test", plan="pro", actor=Actor.system()
    )
    BillingAccount.objects.for_tenant(org).delete()  # as before accounts came with organisations
    migration = _migration("0003_billing_accounts_for_existing_orgs")
    with _organization_plan_column({org.pk: "pro"}):
        state = _state("billing", "0002_seed_plans")
        migration.forwards(state, None)
        assert BillingAccount.objects.for_tenant(org).get().plan.code == "pro"
        migration.forwards(state, None)  # running it again adds nothing
        assert BillingAccount.objects.for_tenant(org).count() == 1


def test_plan_migration_keeps_every_organisations_plan_in_its_account(db):
    """Before ``Organization.plan`` is dropped, an organisation without an account gets one on
    the plan the column named; one with an account keeps the account's (what was billed)."""
    kept = organization_create(
        slug="kept", name="Kept", owner_email="o@kept.test", plan="pro", actor=Actor.system()
    )
    lost = organization_create(
        slug="lost", name="Lost", owner_email="o@lost.test", actor=Actor.system()
    )
    BillingAccount.objects.for_tenant(lost).delete()
    migration = _migration("0005_account_plan_is_the_plan")
    with _organization_plan_column({kept.pk: "free", lost.pk: "enterprise"}):
        state = _state("billing", "0005_account_plan_is_the_plan")
        migration.forwards(state, None)
        migration.forwards(state, None)  # idempotent
        assert selectors.plan_limits_get(organization=kept).plan == "pro"
        assert selectors.plan_limits_get(organization=lost).plan == "enterprise"
        assert BillingAccount.objects.for_tenant(lost).count() == 1
        migration.backwards(state, None)  # reversing refills the column from the accounts
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, plan FROM tenancy_organization WHERE id IN (%s, %s)",
                [kept.pk, lost.pk],
            )
            assert dict(cursor.fetchall()) == {kept.pk: "pro", lost.pk: "enterprise"}


def test_the_selector_never_creates_a_missing_account(db):
    org = organization_create(
        slug="lost", name="Lost", owner_email="o@lost.test", actor=Actor.system()
    )
    BillingAccount.objects.for_tenant(org).delete()
    with pytest.raises(selectors.BillingAccountMissing):
        selectors.billing_account_get(organization=org)
    assert not BillingAccount.objects.for_tenant(org).exists()


# --- reads never write ---------------------------------------------------------------------


def test_billing_get_paths_make_no_writes(acme, django_capture_on_commit_callbacks):
    period_close(
        actor=Actor.system(), organization=acme.org, period_start=datetime.date(2026, 5, 1)
    )
    session = acme.session("owner")
    key = acme.key("owner")
    invoice = Invoice.objects.for_tenant(acme.org).get()
    paths = [
        (session, "/app/billing"),
        (session, "/v1/billing"),
        (session, "/v1/invoices"),
        (session, f"/v1/invoices/{invoice.pk}"),
        (session, "/v1/usage"),
        (key, "/v1/usage"),
    ]
    for client, _ in paths:  # sign-in bookkeeping (a key's last_used_at) happens once a minute
        client.get("/v1/usage")
    for client, path in paths:
        with (
            CaptureQueriesContext(connection) as ctx,
            django_capture_on_commit_callbacks() as callbacks,
        ):
            r = client.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert _writes(ctx) == [], path
        assert callbacks == [], path  # nothing scheduled (no Stripe call)


# --- plan changes go through the service, audited ------------------------------------------


def test_plan_change_moves_account_and_organisation_and_is_audited(acme):
    actor = Actor(user_id=acme.users["owner"].pk, ip="10.0.0.1")
    account = billing_plan_change(organization=acme.org, plan_code="pro", actor=actor)
    assert account.plan.code == "pro"
    # The organisation's plan is its account's: what its limits are read from moved too.
    assert selectors.plan_limits_get(organization=acme.org.pk).plan == "pro"
    event = AuditEvent.objects.for_tenant(acme.org).get(action="billing_account.plan_changed")
    assert event.actor_user_id == actor.user_id and event.data == {"old": "free", "new": "pro"}
    billing_plan_change(organization=acme.org, plan_code="pro", actor=actor)  # no change
    assert (
        AuditEvent.objects.for_tenant(acme.org).filter(action__endswith="plan_changed").count() == 1
    )


def test_unknown_plan_is_refused_and_changes_nothing(acme):
    with pytest.raises(ValidationFailed):
        billing_plan_change(organization=acme.org, plan_code="platinum", actor=Actor.system())
    assert selectors.billing_account_get(organization=acme.org).plan.code == "free"
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action__endswith="plan_changed")


# --- layering ------------------------------------------------------------------------------


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_billing_imports_neither_jobs_inference_nor_http():
    bad = (
        "saas.jobs",
        "saas.inference",
        "saas.api",
        "saas.dashboard",
        "django.http",
        "rest_framework",
    )
    found = {
        f"{p.relative_to(BILLING)}: {m}"
        for p in BILLING.rglob("*.py")
        for m in _imports(p)
        # A package or its submodules: saas.apikeys (below billing, whose key spend cap
        # billing_check reads) is not saas.api.
        if any(m == b or m.startswith(f"{b}.") for b in bad)
    }
    assert found == set()
