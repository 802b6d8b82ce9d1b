"""The operator admin: each app registers its own models; the ledger, the audit log and job
state are read-only; an organisation's status changes through audited actions."""

from __future__ import annotations

import datetime

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.test import RequestFactory
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.billing.models import Contract, ContractPrice, StripeEvent
from saas.billing.selectors import billing_account_get
from saas.billing.services import billing_credit_grant
from saas.billing.services.period_close import period_close
from saas.common.actor import Actor
from saas.jobs.models import TrainingJob
from saas.metering.models import Meter, UsageEvent
from saas.metering.services import usage_record
from saas.tenancy.models import AuditEvent, Organization
from tests.conftest import small_text_rows, text_csv, upload
from tests.saas.dashboard.conftest import finish

pytestmark = pytest.mark.django_db


def test_each_app_registers_its_own_models():
    for model, module in [
        (ApiKey, "saas.apikeys.admin"),
        (TrainingJob, "saas.jobs.admin"),
        (UsageEvent, "saas.metering.admin"),
        (AuditEvent, "saas.tenancy.admin"),
        (Organization, "saas.tenancy.admin"),
    ]:
        assert type(admin.site._registry[model]).__module__ == module


def test_ledger_rows_cannot_be_changed_or_deleted(acme, console):
    usage_record(
        organization_id=acme.org.pk,
        meter=Meter.PREDICTIONS,
        quantity=3,
        occurred_at=timezone.now(),
        source_type="test",
        source_id="t1",
    )
    row = UsageEvent.objects.for_tenant(acme.org).get()
    url = f"/admin/metering/usageevent/{quote(row.pk)}/"
    assert console.get(url + "change/").status_code == 200  # readable
    assert console.post(url + "change/", {"quantity": "999"}).status_code == 403
    assert console.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert console.get("/admin/metering/usageevent/add/").status_code == 403
    after = UsageEvent.objects.for_tenant(acme.org).get()
    assert after.quantity == row.quantity


def test_audit_events_cannot_be_changed_or_deleted(acme, console):
    event = AuditEvent.objects.for_tenant(acme.org).get(action="organization.created")
    url = f"/admin/tenancy/auditevent/{quote(event.pk)}/"
    assert console.post(url + "change/", {"action": "forged"}).status_code == 403
    assert console.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.for_tenant(acme.org).get(pk=event.pk).action == "organization.created"


def test_job_state_and_organisation_fields_are_read_only(operator):
    request = RequestFactory().get("/admin/")
    request.user = operator
    for model in (TrainingJob, UsageEvent, AuditEvent):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
    org_admin = admin.site._registry[Organization]
    assert {"status"} <= set(org_admin.get_readonly_fields(request))
    # The plan is not the organisation's to show or edit: billing's account holds it.
    assert "plan" not in org_admin.get_fields(request)
    assert not org_admin.has_change_permission(request)


def test_organisation_form_does_not_edit_plan_or_status(acme, console):
    r = console.post(
        f"/admin/tenancy/organization/{quote(acme.org.pk)}/change/",
        {"slug": acme.org.slug, "name": "x", "plan": "enterprise", "status": "suspended"},
    )
    assert r.status_code == 403
    org = Organization.objects.get(pk=acme.org.pk)
    assert (billing_account_get(organization=org).plan.code, org.status) == ("free", "active")


def test_suspend_and_reactivate_actions_are_audited_with_the_operator(
    acme, globex, console, operator
):
    changelist = "/admin/tenancy/organization/"
    r = console.post(changelist, {"action": "suspend", "_selected_action": [acme.org.pk]})
    assert r.status_code == 302
    assert Organization.objects.get(pk=acme.org.pk).status == "suspended"
    assert Organization.objects.get(pk=globex.org.pk).status == "active"
    event = AuditEvent.objects.for_tenant(acme.org).get(action="organization.suspended")
    assert event.actor_user_id == operator.pk and event.target_id == acme.org.pk
    assert event.data["old_status"] == "active" and event.data["new_status"] == "suspended"
    # The suspension is real: a key of the organisation can no longer upload.
    assert acme.key("owner").post("/v1/training-jobs", {}, format="json").status_code == 403

    # Suspending again changes nothing and records nothing.
    console.post(changelist, {"action": "suspend", "_selected_action": [acme.org.pk]})
    assert (
        AuditEvent.objects.for_tenant(acme.org).filter(action="organization.suspended").count() == 1
    )

    console.post(changelist, {"action": "reactivate", "_selected_action": [acme.org.pk]})
    assert Organization.objects.get(pk=acme.org.pk).status == "active"
    back = AuditEvent.objects.for_tenant(acme.org).get(action="organization.reactivated")
    assert back.actor_user_id == operator.pk


def test_api_keys_are_revoked_by_an_audited_action(acme, console, operator):
    key = acme.key("developer").api_key
    r = console.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    assert r.status_code == 302
    assert ApiKey.objects.for_tenant(acme.org).get(pk=key.pk).revoked_at is not None
    event = AuditEvent.objects.for_tenant(acme.org).get(action="api_key.revoked")
    assert event.actor_user_id == operator.pk and event.target_id == key.pk


def test_every_admin_list_and_change_page_renders(acme, console, operator):
    request = RequestFactory().get("/admin/")
    request.user = operator
    usage_record(
        organization_id=acme.org.pk,
        meter=Meter.PREDICTIONS,
        quantity=1,
        occurred_at=timezone.now(),
        source_type="test",
        source_id="t2",
        api_key_id=acme.key("owner").api_key.pk,
    )
    # One of the rest: a dataset, a job and its model, a contract with a price (whose change
    # page once raised UnscopedQueryError).
    owner = acme.key("owner")
    ds = upload(owner, text_csv(small_text_rows())).json()
    job = owner.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    finish(TrainingJob.objects.for_tenant(acme.org).get(pk=job["id"]))
    contract = Contract.objects.for_tenant(acme.org).create(
        organization=acme.org,
        starts_on=datetime.date(2026, 1, 1),
        ends_on=datetime.date(2026, 12, 31),
    )
    ContractPrice.objects.for_tenant(acme.org).create(
        organization=acme.org, contract=contract, meter=Meter.PREDICTIONS, unit_price="0.001"
    )
    # This month's invoice (its usage line bills the prediction above), a stored Stripe event.
    this_month = timezone.now().date().replace(day=1)
    period_close(organization=acme.org, period_start=this_month, actor=Actor.system())
    StripeEvent.objects.create(event_id="evt_walk", type="invoice.paid", created=1, payload={})
    billing_credit_grant(organization=acme.org, amount="5", reason="walk", actor=Actor.system())
    empty = []
    for model, model_admin in admin.site._registry.items():
        base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert console.get(base).status_code == 200, base
        if model_admin.has_add_permission(request):
            assert console.get(f"{base}add/").status_code == 200, base
        obj = model_admin.get_queryset(request).first()
        if obj is not None:
            assert console.get(f"{base}{quote(obj.pk)}/change/").status_code == 200, base
        else:
            empty.append(model._meta.label)
    # Every tenant-owned model has a row above, so every one of their change pages rendered.
    assert set(empty) <= {"auth.Group", "billing.RateCard"}, empty
