"""Period close, quotas and spend caps, estimates and margins, against the real ledger."""

import datetime
from decimal import Decimal as D

import pytest
from django.utils import timezone

from saas.billing import services as billing
from saas.billing.models import BillingAccount, Contract, ContractPrice, Invoice, InvoiceLine
from saas.common.actor import Actor
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.tenancy.models import Organization
from tests.conftest import make_tenant, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db
MAY = datetime.date(2026, 5, 1)


def record(org, meter, qty, day=datetime.date(2026, 5, 10), source=None, cost=0, key=None):
    at = timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))
    usage_record(
        organization_id=org.pk,
        meter=meter,
        quantity=D(str(qty)),
        occurred_at=at,
        source_type="test",
        source_id=source or f"{meter}-{qty}-{day}",
        compute_cost=cost,
        api_key_id=key,
    )


def test_pro_plan_invoice_by_hand(db):
    org = make_tenant("pro-co").org
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    org.refresh_from_db()
    # 40 000 s of training (36 000 included → 4 000 × $0.0005 = $2.00),
    # 100 250 predictions (100 000 included → 250 × $0.0005 = $0.125 → $0.13 half-up)
    record(org, Meter.TRAINING_COMPUTE_SECONDS, 25000, cost="0.5")
    record(org, Meter.TRAINING_COMPUTE_SECONDS, 15000, day=datetime.date(2026, 5, 31), cost="0.3")
    record(org, Meter.PREDICTIONS, 100250)
    record(
        org, Meter.PREDICTIONS, 999, day=datetime.date(2026, 6, 1)
    )  # next period: not on this invoice
    inv = billing.period_close(actor=Actor.system(), organization=org, period_start=MAY)
    lines = {
        ln.meter or ln.kind: ln for ln in InvoiceLine.objects.for_tenant(org).filter(invoice=inv)
    }
    assert lines["subscription"].amount == D("49.00")
    assert lines["training_compute_seconds"].quantity == D("4000") and lines[
        "training_compute_seconds"
    ].amount == D("2.00")
    assert lines["predictions"].amount == D("0.13")
    assert inv.subtotal == D("51.13") and inv.total == D("51.13") and inv.tax == 0
    assert inv.due_on == datetime.date(2026, 6, 1) and inv.period_end == datetime.date(2026, 6, 1)
    assert inv.compute_cost == D("0.80")
    # closing again changes nothing and makes no second invoice
    assert (
        billing.period_close(actor=Actor.system(), organization=org, period_start=MAY).pk == inv.pk
    )
    assert Invoice.objects.for_tenant(org).count() == 1


def test_contract_invoice_with_minimum_credit_tax_and_terms(db):
    org = make_tenant("bigco").org
    billing.billing_plan_change(organization=org, plan_code="enterprise", actor=Actor.system())
    org.refresh_from_db()
    contract = Contract.objects.for_tenant(org).create(
        organization=org,
        starts_on=datetime.date(2026, 1, 1),
        ends_on=datetime.date(2026, 12, 31),
        committed_monthly_minimum=D("500.00"),
        prepaid_credit_balance=D("300.00"),
        payment_terms_days=45,
        po_number="PO-7",
        tax_rate=D("0.2000"),
    )
    ContractPrice.objects.for_tenant(org).create(
        organization=org, contract=contract, meter=Meter.PREDICTIONS, unit_price=D("0.001")
    )
    record(org, Meter.PREDICTIONS, 200000)  # 200 000 × $0.001 = $200.00 at the contract price
    inv = billing.period_close(actor=Actor.system(), organization=org, period_start=MAY)
    lines = list(
        InvoiceLine.objects.for_tenant(org).filter(invoice=inv).values_list("kind", "amount")
    )
    # usage 200 + true-up 300 = minimum 500; credit 300 applied; tax 20 % of 200 = 40; total 240
    assert (
        ("usage", D("200.00")) in lines
        and ("true_up", D("300.00")) in lines
        and ("credit", D("-300.00")) in lines
    )
    assert (inv.subtotal, inv.credit_applied, inv.tax, inv.total) == (
        D("500.00"),
        D("300.00"),
        D("40.00"),
        D("240.00"),
    )
    assert (
        inv.due_on == datetime.date(2026, 6, 1) + datetime.timedelta(days=45)
        and inv.po_number == "PO-7"
    )
    assert Contract.objects.for_tenant(org).get().prepaid_credit_balance == D("0.00")
    assert billing.period_close(
        actor=Actor.system(), organization=org, period_start=MAY
    ).total == D("240.00")
    assert Contract.objects.for_tenant(org).get().prepaid_credit_balance == D(
        "0.00"
    )  # not drawn twice


def test_invoice_numbers_are_sequential(db):
    a, b = make_tenant("a-co").org, make_tenant("b-co").org
    n1 = billing.period_close(actor=Actor.system(), organization=a, period_start=MAY).number
    n2 = billing.period_close(actor=Actor.system(), organization=b, period_start=MAY).number
    n3 = billing.period_close(
        actor=Actor.system(), organization=a, period_start=datetime.date(2026, 6, 1)
    ).number
    assert [int(n.split("-")[1]) for n in (n1, n2, n3)] == [1, 2, 3]


def test_free_plan_quota_is_a_402_naming_the_meter(db):
    t = make_tenant("free-co")
    record(t.org, Meter.PREDICTIONS, 10000, day=timezone.now().date())
    from saas.billing.services import PaymentRequired

    with pytest.raises(PaymentRequired) as err:
        billing.billing_check(
            actor=Actor.system(), organization=t.org, meter=Meter.PREDICTIONS, quantity=D(1)
        )
    assert err.value.extra["meter"] == "predictions" and err.value.extra["limit"] == "10000"
    assert err.value.extra["resets_on"]
    ds = upload(t.client, text_csv(small_text_rows())).json()
    record(t.org, Meter.TRAINING_COMPUTE_SECONDS, 3600, day=timezone.now().date())
    r = t.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert r.status_code == 402 and r.json()["meter"] == "training_compute_seconds"
    assert r.json()["type"].endswith("payment-required") and "resets" in r.json()["detail"]


def test_spend_cap_and_key_spend_cap(db):
    t = make_tenant("capped")
    billing.billing_plan_change(organization=t.org, plan_code="pro", actor=Actor.system())
    t.org.refresh_from_db()
    ds = upload(t.client, text_csv(small_text_rows())).json()
    billing.billing_account_get(organization=t.org)
    BillingAccount.objects.for_tenant(t.org).update(
        monthly_spend_cap=D("49.00")
    )  # the fee alone reaches it
    r = t.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert r.status_code == 402 and r.json()["remaining"] == "0"
    BillingAccount.objects.for_tenant(t.org).update(monthly_spend_cap=None)
    from saas.apikeys.models import ApiKey

    key = ApiKey.objects.for_tenant(t.org).get()
    ApiKey.objects.for_tenant(t.org).update(monthly_spend_cap=D("1.00"))
    record(
        t.org, Meter.PREDICTIONS, 2000, day=timezone.now().date(), key=key.pk
    )  # $1.00 at list price
    r = t.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
    assert r.status_code == 402 and "API key" in r.json()["detail"]


def test_dry_run_estimates_and_creates_nothing(tenant):
    from saas.jobs.models import TrainingJob

    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    r = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds["id"], "dry_run": True, "hyperparameters": {"epochs": 4}},
        format="json",
    )
    assert r.status_code == 200, r.content
    est = r.json()
    assert est["object"] == "training_job.estimate" and est["basis"]["epochs"] == 4
    assert est["basis"]["examples"] == 19  # 24 rows, ceil(24 × 0.2) = 5 for validation
    assert est["estimated_seconds"] > 0 and D(est["price"]["low"]) <= D(est["price"]["high"])
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 0
    bad = tenant.client.post(
        "/v1/training-jobs",
        {"dataset": ds["id"], "dry_run": True, "hyperparameters": {"epochs": 0}},
        format="json",
    )
    assert bad.status_code == 400


def test_margins_report(db):
    org = make_tenant("m-co").org
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    org.refresh_from_db()
    record(org, Meter.TRAINING_COMPUTE_SECONDS, 100, cost="9.00")
    billing.period_close(actor=Actor.system(), organization=org, period_start=MAY)
    row = next(r for r in billing.margins(start=MAY) if r["organization"] == "m-co")
    assert row["revenue"] == D("49.00") and row["compute_cost"] == D("9.00")
    assert row["gross_margin"] == D("40.00") and row["margin_pct"] == D("81.6")


def test_storage_sample_is_idempotent_per_hour(tenant):
    upload(tenant.client, text_csv(small_text_rows()))
    at = timezone.now()
    assert billing.storage_sample(at=at) >= 1
    assert billing.storage_sample(at=at) == 0
    from saas.metering.models import UsageEvent

    assert UsageEvent.objects.for_tenant(tenant.org).filter(meter="storage_gb_hours").count() == 1
    # The operator's cost: the GB-hours at the rate card's storage price.
    from saas.billing.models import RateCard

    ev = UsageEvent.objects.for_tenant(tenant.org).get(meter="storage_gb_hours")
    rate = RateCard.objects.order_by("-effective_from").first().storage_gb_hour_cost
    assert rate > 0 and ev.compute_cost == (ev.quantity * rate).quantize(D("0.00000001"))


def test_billing_endpoint_and_spend_cap_patch(db):
    from tests.conftest import Org

    acme = Org("acme")
    r = acme.session("billing").get("/v1/billing")
    assert (
        r.status_code == 200
        and r.json()["plan"] == "free"
        and r.json()["current_period"]["total"] == "0.00"
    )
    r = acme.session("billing").patch("/v1/billing", {"monthly_spend_cap": "25.00"}, format="json")
    assert r.status_code == 200 and r.json()["monthly_spend_cap"] == "25.00"
    assert (
        acme.session("developer")
        .patch("/v1/billing", {"monthly_spend_cap": "1"}, format="json")
        .status_code
        == 403
    )
    assert (
        acme.session("billing")
        .patch("/v1/billing", {"monthly_spend_cap": "-1"}, format="json")
        .status_code
        == 400
    )


def test_usage_by_api_key_and_model(tenant):
    from saas.apikeys.models import ApiKey

    key = ApiKey.objects.for_tenant(tenant.org).get()
    record(tenant.org, Meter.PREDICTIONS, 5, day=timezone.now().date(), key=key.pk, source="a")
    record(tenant.org, Meter.PREDICTIONS, 7, day=timezone.now().date(), source="b")
    rows = tenant.client.get("/v1/usage?group_by=api_key").json()["data"]
    assert {(r["api_key"], r["quantity"]) for r in rows} == {(key.pk, "5"), (None, "7")}
    assert tenant.client.get("/v1/usage?group_by=user").status_code == 400
    assert tenant.client.get("/v1/usage").json()["data"][0]["quantity"] == "12"


def test_usage_warnings_at_80_and_100_percent_once(tenant, django_capture_on_commit_callbacks):
    from django.core import mail

    today = timezone.now().date()
    record(tenant.org, Meter.PREDICTIONS, 8000, day=today, source="w1")  # free: 10 000 included
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.usage_warnings_send(actor=Actor.system(), organization=tenant.org) == [
            f"{today:%Y-%m}:predictions:80"
        ]
        assert billing.usage_warnings_send(actor=Actor.system(), organization=tenant.org) == []
    record(tenant.org, Meter.PREDICTIONS, 2000, day=today, source="w2")
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.usage_warnings_send(actor=Actor.system(), organization=tenant.org) == [
            f"{today:%Y-%m}:predictions:100"
        ]
    assert len(mail.outbox) == 2 and "owner@acme.test" in mail.outbox[0].to
    assert tenant.client.get("/v1/billing").status_code == 403  # API keys: no billing scope
    from rest_framework.test import APIClient

    from saas.tenancy.models import Membership

    c = APIClient()
    c.force_login(Membership.objects.get(organization=tenant.org).user)
    body = c.get("/v1/billing").json()
    pred = next(lv for lv in body["usage_levels"] if lv["meter"] == "predictions")
    assert pred["percent"] == 100 and pred["warning"] == "limit reached"


def test_simulated_month_invoices_by_hand(db):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("simulate_billing_month", "--month", "2026-05", stdout=out)
    call_command("simulate_billing_month", "--month", "2026-05", stdout=io.StringIO())  # idempotent
    pro = Organization.objects.get(slug="sim-pro")
    ent = Organization.objects.get(slug="sim-enterprise")
    p = Invoice.objects.for_tenant(pro).get()
    e = Invoice.objects.for_tenant(ent).get()
    # pro: 49 + (46 500 − 36 000) s × 0.0005 + (12.4M − 10M) examples × 0.000001 + (124 000 − 100 000) × 0.0005
    assert p.total == D("49.00") + D("5.25") + D("2.40") + D("12.00")
    # enterprise: usage 7.44 + 2.48 + 18.60 = 28.52 → true-up 71.48 to the 100.00 minimum; 50 credit; 20 % tax
    assert (e.subtotal, e.credit_applied, e.tax, e.total) == (
        D("100.00"),
        D("50.00"),
        D("10.00"),
        D("60.00"),
    )
    assert "TY-" in out.getvalue()


def test_a_jobs_charge_equals_its_invoice_lines(tenant, tmp_path):
    """Two jobs on pro: the first is covered by included units, the second straddles them."""
    from types import SimpleNamespace

    from saas.jobs import services as jobs
    from saas.jobs.models import TrainingJob

    billing.billing_plan_change(organization=tenant.org, plan_code="pro", actor=Actor.system())
    tenant.org.refresh_from_db()
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    charges = {}
    for i, seconds in enumerate((30000.0, 10000.5)):  # 36 000 s included: job 2 pays for 4 000.5 s
        job = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
        start = jobs.training_job_start(job_id=job["id"])
        model_dir = tmp_path / f"m{i}" / "saved_model"
        model_dir.mkdir(parents=True)
        (model_dir / "saved_model.pb").write_bytes(b"x")
        result = SimpleNamespace(
            classes=["a", "b"],
            saved_model_dir=str(model_dir),
            metrics={},
            misclassified=[],
            epochs_completed=1,
            examples_processed=5_000_001 * (i + 1),
        )
        jobs.training_job_complete(
            start=start,
            result=result,
            resources={"wall_seconds": seconds, "cpu_seconds": 1.0, "device": "cpu"},
        )
        charges[job["id"]] = D(
            TrainingJob.objects.for_tenant(tenant.org).get(pk=job["id"]).usage["charge"]
        )
    inv = billing.period_close(
        actor=Actor.system(),
        organization=tenant.org,
        period_start=timezone.now().date().replace(day=1),
    )
    per_job = {}
    for ln in InvoiceLine.objects.for_tenant(tenant.org).filter(invoice=inv, kind="usage"):
        for job_id in charges:
            if job_id in ln.description:
                per_job[job_id] = per_job.get(job_id, D(0)) + ln.amount
    assert per_job == charges
    first, second = charges.values()
    # job 1: 30 000 s and 5 000 001 examples, all included → 0; job 2: 4 000.5 s × 0.0005 = 2.00025 → 2.00,
    # examples 15 000 003 − 10 000 000 = 5 000 003 × 0.000001 = 5.000003 → 5.00
    assert first == D("0.00") and second == D("7.00")


def test_corrections_are_new_negative_events(tenant):
    from saas.common.actor import Actor
    from saas.metering.models import UsageEvent
    from saas.metering.services import usage_correct

    record(tenant.org, Meter.PREDICTIONS, 100, day=timezone.now().date(), source="orig")
    event = UsageEvent.objects.for_tenant(tenant.org).get(source_id="orig")
    fix = usage_correct(
        event=event,
        quantity=D(-30),
        reason="duplicate requests during an outage",
        actor=Actor.system(),
    )
    assert fix.pk != event.pk and fix.quantity == D(-30) and fix.reason.startswith("duplicate")
    assert UsageEvent.objects.for_tenant(tenant.org).get(pk=event.pk).quantity == D(
        100
    )  # never edited
    start, end = billing.pricing.month_bounds(timezone.now().date())
    assert billing.usage_totals(organization_id=tenant.org.pk, start=start, end=end)[
        "predictions"
    ] == D(70)
    with pytest.raises(ValueError):
        usage_correct(event=event, quantity=D(-71), reason="too much", actor=Actor.system())
    with pytest.raises(ValueError):
        usage_correct(event=event, quantity=D(-1), reason=" ", actor=Actor.system())


def test_training_correction_is_credited_on_the_invoice(db):
    from saas.common.actor import Actor
    from saas.metering.models import UsageEvent
    from saas.metering.services import usage_correct

    org = make_tenant("refund-co").org
    billing.billing_plan_change(organization=org, plan_code="pro", actor=Actor.system())
    org.refresh_from_db()
    month = timezone.now().date().replace(day=1)
    record(org, Meter.TRAINING_COMPUTE_SECONDS, 40000, day=timezone.now().date(), source="big-job")
    event = UsageEvent.objects.for_tenant(org).get(source_id="big-job")
    usage_correct(
        event=event,
        quantity=D(-4000),
        reason="refund: worker restarted twice",
        actor=Actor.system(),
    )
    inv = billing.period_close(actor=Actor.system(), organization=org, period_start=month)
    amounts = list(
        InvoiceLine.objects.for_tenant(org)
        .filter(invoice=inv, kind="usage")
        .values_list("amount", flat=True)
    )
    assert sorted(amounts) == [D("-2.00"), D("2.00")]
    assert inv.total == D("49.00")
