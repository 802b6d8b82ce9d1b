"""The Django admin keeps raw data in view but changes none of the records services own: the
usage ledger, the audit log, invoices and their lines, quota reservations, Stripe's events,
job state and job timelines. Driven through Django's test client as a superuser, so what is
checked is what an operator's browser gets (not only what ``has_*_permission`` says)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.db import models
from django.utils import timezone

from saas.billing.models import Invoice, InvoiceLine, QuotaReservation, StripeEvent
from saas.billing.services.period_close import period_close
from saas.common.actor import Actor
from saas.jobs.models import JobEvent, TrainingJob
from saas.metering.models import Meter, UsageEvent
from saas.metering.services import usage_record
from saas.tenancy.models import AuditEvent, TenantManager
from tests.conftest import Org, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db

MAY = datetime.date(2026, 5, 1)


def _rows(model: type[models.Model]) -> models.QuerySet:
    """Every row of ``model``, whichever tenant (a test's look at the database)."""
    manager = model._default_manager
    if isinstance(manager, TenantManager):
        return manager.unscoped_all_tenants()
    return manager.all()


def _world(acme: Org) -> None:
    """One row (at least) of each read-only model, made the way the platform makes them."""
    owner = acme.key("owner")
    ds = upload(owner, text_csv(small_text_rows()))
    assert ds.status_code == 201, ds.content
    # A job (and its timeline and quota reservation), through the API.
    job = owner.post("/v1/training-jobs", {"dataset": ds.json()["id"]}, format="json")
    assert job.status_code == 201, job.content
    # A May prediction in the ledger, then May's invoice (with its lines).
    usage_record(
        organization_id=acme.org.pk,
        meter=Meter.PREDICTIONS,
        quantity=5,
        occurred_at=timezone.make_aware(datetime.datetime(2026, 5, 10, 12)),
        source_type="test",
        source_id="admin-readonly",
    )
    period_close(organization=acme.org, period_start=MAY, actor=Actor.system())
    # Stripe's events are stored as the webhook receives them (raw rows, no service).
    StripeEvent.objects.create(
        event_id="evt_admin_readonly", type="invoice.paid", created=1780000000, payload={}
    )


@dataclass(frozen=True)
class ReadOnly:
    model: type[models.Model]
    #: a change the operator might try through the change form: ``{field: value}``
    change: dict[str, Any]
    #: which row to try it on (default: any)
    pick: Callable[[models.QuerySet], models.Model] = lambda qs: qs.order_by("pk").first()


READ_ONLY = [
    ReadOnly(TrainingJob, {"status": "succeeded", "attempt": "7"}),
    ReadOnly(JobEvent, {"type": "succeeded", "message": "forged"}),
    ReadOnly(UsageEvent, {"quantity": "999", "meter": Meter.TRAINING_GPU_SECONDS.value}),
    ReadOnly(AuditEvent, {"action": "forged"}),
    ReadOnly(Invoice, {"status": "void", "total": "0.00"}),
    ReadOnly(InvoiceLine, {"amount": "999.00", "description": "forged"}),
    ReadOnly(QuotaReservation, {"amount": "999.00"}),
    ReadOnly(StripeEvent, {"type": "forged"}),
]


@pytest.mark.parametrize("spec", READ_ONLY, ids=lambda s: s.model._meta.label)
def test_admin_is_read_only(spec: ReadOnly, acme, console):
    _world(acme)
    model = spec.model
    row = spec.pick(_rows(model))
    assert row is not None, f"no {model._meta.label} row to try"
    before = list(_rows(model).order_by("pk").values())
    base = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    change_url = f"{base}{quote(row.pk)}/change/"

    changelist = console.get(base)
    assert changelist.status_code == 200
    # No bulk delete (nor any other action that Django offers by default).
    assert 'value="delete_selected"' not in changelist.content.decode()

    page = console.get(change_url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert 'class="deletelink"' not in html

    # A forged form post to the change URL: refused, nothing written.
    forged = console.post(change_url, {**spec.change, "_save": "Save"})
    assert forged.status_code == 403
    assert console.get(f"{base}add/").status_code == 403
    assert console.post(f"{base}add/", spec.change).status_code == 403
    assert console.post(f"{base}{quote(row.pk)}/delete/", {"post": "yes"}).status_code == 403
    # The bulk action posted by hand: Django does not know it here, so deletes nothing.
    console.post(base, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})

    assert list(_rows(model).order_by("pk").values()) == before


def test_every_registered_admin_changelist_renders(acme, console):
    _world(acme)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = console.get(url)
        assert response.status_code == 200, (url, response.status_code)


def test_the_admin_links_to_the_operator_console(console):
    index = console.get("/admin/")
    assert index.status_code == 200
    html = index.content.decode()
    assert '<a href="/console/">Operator console</a>' in html
    assert "Django administration" in html  # Django's own header stays
    assert console.get("/console/").status_code == 200


def test_the_old_margins_report_redirects_to_the_console(console):
    from django.urls import reverse

    url = reverse("admin:billing_margins")
    assert url == "/admin/billing/plan/margins/"
    r = console.get(url)
    assert (r.status_code, r["Location"]) == (302, "/console/economics")
    r = console.get(url, {"month": "2026-05"})
    assert (r.status_code, r["Location"]) == (302, "/console/economics?month=2026-05")
    assert console.get(r["Location"]).status_code == 200


def test_the_old_margins_url_still_needs_an_operator(client, db):
    r = client.get("/admin/billing/plan/margins/")
    assert r.status_code == 302 and r["Location"].startswith("/admin/login/")
