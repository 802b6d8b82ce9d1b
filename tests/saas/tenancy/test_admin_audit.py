"""Every admin change is audited: what stays editable (contracts and their prices) goes through
``TenantModelAdmin``, which records ``admin.<model>.created|changed|deleted`` with the operator
as actor; datasets and trained models are read-only, a dataset deleted by an audited action."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote

from saas.billing.models import Contract, ContractPrice
from saas.datasets.models import Dataset
from saas.registry.models import TrainedModel
from saas.tenancy.models import AuditEvent
from tests.conftest import small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db

CONTRACTS = "/admin/billing/contract/"
PRICES = "/admin/billing/contractprice/"


def _admin_events(org, prefix: str = "admin.") -> list[AuditEvent]:
    return list(AuditEvent.objects.for_tenant(org).filter(action__startswith=prefix).order_by("id"))


def _contract_form(org_id: str | None = None, **changes) -> dict:
    data = {
        "starts_on": "2026-01-01",
        "ends_on": "2026-12-31",
        "currency": "usd",
        "committed_monthly_minimum": "1000.00",
        "prepaid_credit_balance": "0.00",
        "payment_terms_days": "30",
        "po_number": "PO-1",
        "billing_contact": "ap@acme.test",
        "tax_rate": "0.2000",
        **changes,
    }
    if org_id is not None:
        data["organization"] = org_id
    return data


def _contract(org) -> Contract:
    return Contract.objects.for_tenant(org).create(
        organization=org, starts_on=datetime.date(2026, 1, 1), ends_on=datetime.date(2026, 12, 31)
    )


def test_contract_create_change_and_delete_are_audited_with_the_operator(
    acme, globex, console, operator
):
    r = console.post(CONTRACTS + "add/", _contract_form(acme.org.pk))
    assert r.status_code == 302, r.content[:2000]
    contract = Contract.objects.for_tenant(acme.org).get()
    (created,) = _admin_events(acme.org)
    assert created.action == "admin.contract.created"
    assert (created.actor_user_id, created.target_type, created.target_id) == (
        operator.pk,
        "contract",
        contract.pk,
    )
    assert "committed_monthly_minimum" in created.data["fields"]

    url = f"{CONTRACTS}{contract.pk}/change/"
    page = console.get(url)
    assert page.status_code == 200 and b"Add a price" in page.content
    r = console.post(url, _contract_form(committed_monthly_minimum="2500.00"))
    assert r.status_code == 302, r.content[:2000]
    contract.refresh_from_db()
    assert contract.committed_monthly_minimum == Decimal("2500.00")
    changed = _admin_events(acme.org)[-1]
    assert changed.action == "admin.contract.changed"
    assert changed.data == {"fields": ["committed_monthly_minimum"]}
    assert changed.actor_user_id == operator.pk

    # The organisation is fixed once the contract exists: a posted one is ignored.
    console.post(url, _contract_form(globex.org.pk))
    assert Contract.objects.unscoped_all_tenants().get(pk=contract.pk).organization_id == (
        acme.org.pk
    )

    r = console.post(f"{CONTRACTS}{contract.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Contract.objects.for_tenant(acme.org).exists()
    deleted = _admin_events(acme.org)[-1]
    assert (deleted.action, deleted.target_id, deleted.actor_user_id) == (
        "admin.contract.deleted",
        contract.pk,
        operator.pk,
    )
    assert _admin_events(globex.org) == []


def test_an_invalid_admin_form_changes_and_records_nothing(acme, console):
    r = console.post(CONTRACTS + "add/", _contract_form(acme.org.pk, ends_on="not a date"))
    assert r.status_code == 200
    assert not Contract.objects.unscoped_all_tenants().exists()
    assert _admin_events(acme.org) == []


def test_bulk_delete_audits_every_row(acme, globex, console, operator):
    mine, theirs = _contract(acme.org), _contract(globex.org)
    r = console.post(
        CONTRACTS,
        {"action": "delete_selected", "_selected_action": [mine.pk, theirs.pk], "post": "yes"},
    )
    assert r.status_code == 302
    assert not Contract.objects.unscoped_all_tenants().exists()
    for org, contract in ((acme.org, mine), (globex.org, theirs)):
        (event,) = _admin_events(org)
        assert (event.action, event.target_id, event.actor_user_id) == (
            "admin.contract.deleted",
            contract.pk,
            operator.pk,
        )


def test_contract_prices_are_edited_on_their_own_audited_page(acme, console, operator):
    contract = _contract(acme.org)
    assert console.get(f"{PRICES}add/?contract={contract.pk}").status_code == 200
    r = console.post(
        PRICES + "add/", {"contract": contract.pk, "meter": "predictions", "unit_price": "0.0005"}
    )
    assert r.status_code == 302, r.content[:2000]
    price = ContractPrice.objects.for_tenant(acme.org).get()
    assert price.organization_id == acme.org.pk and price.unit_price == Decimal("0.0005")
    (event,) = _admin_events(acme.org)
    assert (event.action, event.target_id, event.actor_user_id) == (
        "admin.contractprice.created",
        str(price.pk),
        operator.pk,
    )
    page = console.get(f"{CONTRACTS}{contract.pk}/change/")
    assert f"{PRICES}{price.pk}/change/".encode() in page.content

    # The (contract, meter) constraint is a form error, not an UnscopedQueryError or a 500.
    r = console.post(
        PRICES + "add/", {"contract": contract.pk, "meter": "predictions", "unit_price": "0.1"}
    )
    assert r.status_code == 200 and b"already exists" in r.content
    assert ContractPrice.objects.for_tenant(acme.org).count() == 1
    assert len(_admin_events(acme.org)) == 1

    r = console.post(
        f"{PRICES}{price.pk}/change/",
        {"contract": contract.pk, "meter": "predictions", "unit_price": "0.0007"},
    )
    assert r.status_code == 302, r.content[:2000]
    changed = _admin_events(acme.org)[-1]
    assert (changed.action, changed.data) == (
        "admin.contractprice.changed",
        {"fields": ["unit_price"]},
    )


def test_datasets_are_read_only_and_deleted_through_the_service(acme, console, operator):
    client = acme.key("owner")
    ds = upload(client, text_csv(small_text_rows())).json()
    url = f"/admin/datasets/dataset/{quote(ds['id'])}/"
    assert console.get(url + "change/").status_code == 200
    assert console.post(url + "change/", {"name": "renamed"}).status_code == 403
    assert console.post(url + "delete/", {"post": "yes"}).status_code == 403
    assert Dataset.objects.for_tenant(acme.org).get(pk=ds["id"]).name == "data.csv"

    job = client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    action = {"action": "delete_datasets", "_selected_action": [ds["id"]]}
    console.post("/admin/datasets/dataset/", action)
    assert Dataset.objects.for_tenant(acme.org).get(pk=ds["id"]).status == "ready"
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="dataset.deleted").exists()

    client.post(f"/v1/training-jobs/{job['id']}/cancel")
    console.post("/admin/datasets/dataset/", action)
    assert Dataset.objects.for_tenant(acme.org).get(pk=ds["id"]).status == "deleted"
    event = AuditEvent.objects.for_tenant(acme.org).get(action="dataset.deleted")
    assert (event.target_id, event.actor_user_id) == (ds["id"], operator.pk)


def test_trained_models_are_read_only(operator, rf):
    request = rf.get("/admin/")
    request.user = operator
    model_admin = admin.site._registry[TrainedModel]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
