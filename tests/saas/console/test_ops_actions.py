"""The console's retry of a failed or cancelled job, through ``training_job_retry``, against real
PostgreSQL: a fresh job with the same inputs, the tenant's limits applied, audited with the
operator and the reason; every refusal leaves no new job."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client

from saas.common.actor import Actor
from saas.common.errors import Conflict, ValidationFailed
from saas.datasets.services import dataset_delete
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.tenancy.models import AuditEvent
from tests.conftest import set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def _job(tenant, **body) -> TrainingJob:
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    resp = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"], **body}, format="json")
    assert resp.status_code == 201, resp.content
    return TrainingJob.objects.for_tenant(tenant.org).get(pk=resp.json()["id"])


def _failed(tenant, **body) -> TrainingJob:
    """A job that failed the way a worker fails it: started, then ``training_job_fail``."""
    job = _job(tenant, **body)
    start = jobs.training_job_start(job_id=job.pk)
    assert start is not None and start.job_id == job.pk
    jobs.training_job_fail(start=start, code="platform", message="worker exploded")
    job.refresh_from_db()
    assert job.status == "failed"
    return job


def _count(tenant) -> int:
    return TrainingJob.objects.for_tenant(tenant.org).count()


def test_retry_of_a_failed_job_queues_a_fresh_job_with_the_same_inputs(console, operator, tenant):
    old = _failed(tenant, hyperparameters={"epochs": 2}, seed=7)
    resp = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "worker OOM, ticket 41"})
    assert resp.status_code == 302 and resp["Location"] == "/console/jobs"
    new = TrainingJob.objects.for_tenant(tenant.org).exclude(pk=old.pk).get()
    assert new.status == "queued" and new.retry_of_id == old.pk
    assert (new.dataset_id, new.base_model, new.hyperparameters, new.seed, new.device) == (
        old.dataset_id,
        old.base_model,
        old.hyperparameters,
        7,
        old.device,
    )
    assert new.hyperparameters["epochs"] == 2
    assert new.created_by_id == operator.pk and new.created_by_key_id is None
    # The old job keeps its outcome.
    old.refresh_from_db()
    assert old.status == "failed" and (old.error or {}).get("message") == "worker exploded"
    event = AuditEvent.objects.for_tenant(tenant.org).get(action="training_job.retried")
    assert event.actor_user_id == operator.pk and event.target_id == new.pk
    assert event.data["retry_of"] == old.pk and event.data["reason"] == "worker OOM, ticket 41"
    # A fresh submission: created (and audited) like any job, with the staff user as actor.
    created = AuditEvent.objects.for_tenant(tenant.org).get(
        action="training_job.created", target_id=new.pk
    )
    assert created.actor_user_id == operator.pk
    # The tenant's own views take a creator who is not a member (the staff user).
    listed = tenant.client.get("/v1/training-jobs").json()["data"]
    by_id = {j["id"]: j for j in listed}
    assert by_id[new.pk]["retry_of"] == old.pk and by_id[old.pk]["retry_of"] is None
    assert tenant.client.get(f"/v1/training-jobs/{new.pk}").json()["retry_of"] == old.pk
    page = console.get("/console/jobs").content.decode()
    assert new.pk in page and f"retry of <code>{old.pk}</code>" in page


def test_a_cancelled_job_can_be_retried_and_only_once(console, tenant):
    old = jobs.training_job_cancel(job=_job(tenant), actor=Actor.system())
    assert old.status == "cancelled"
    assert console.post(f"/console/jobs/{old.pk}/retry", {"reason": "r"}).status_code == 302
    assert _count(tenant) == 2
    # A second retry of the same job (a double-click) is a 409; nothing more is queued.
    again = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "r"})
    assert again.status_code == 409
    assert _count(tenant) == 2


@pytest.mark.parametrize("state", ["queued", "running", "succeeded"])
def test_retry_of_a_job_that_is_not_failed_or_cancelled_is_a_409(console, tenant, state):
    job = _job(tenant)
    if state != "queued":
        jobs.training_job_start(job_id=job.pk)
    if state == "succeeded":
        TrainingJob.objects.for_tenant(tenant.org).filter(pk=job.pk).update(status="succeeded")
    assert TrainingJob.objects.for_tenant(tenant.org).get(pk=job.pk).status == state
    resp = console.post(f"/console/jobs/{job.pk}/retry", {"reason": "try again"})
    assert resp.status_code == 409
    assert _count(tenant) == 1
    assert not AuditEvent.objects.for_tenant(tenant.org).filter(action="training_job.retried")


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_retry_without_a_reason_is_the_jobs_page_with_a_400(console, tenant, reason):
    old = _failed(tenant)
    resp = console.post(
        f"/console/jobs/{old.pk}/retry",
        {"status": "failed"} if reason is None else {"reason": reason, "status": "failed"},
    )
    assert resp.status_code == 400
    html = resp.content.decode()
    assert "A reason is required to retry a job." in html
    assert old.pk in html  # the page it came from (the failed filter), its row still there
    assert _count(tenant) == 1


def test_a_tenant_at_its_active_job_limit_gets_the_429_and_no_job(console, tenant):
    old = _failed(tenant)
    set_plan_limits(max_active_jobs=1)
    _job(tenant)  # the one active job the plan allows
    resp = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "customer asked"})
    assert resp.status_code == 429
    assert "Too many training jobs" in resp.content.decode()
    assert _count(tenant) == 2
    assert not TrainingJob.objects.for_tenant(tenant.org).filter(retry_of=old).exists()
    assert not AuditEvent.objects.for_tenant(tenant.org).filter(action="training_job.retried")


def test_a_job_whose_dataset_was_deleted_cannot_be_retried(console, tenant):
    old = _failed(tenant)
    dataset_delete(dataset=old.dataset, actor=Actor.system())
    resp = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "again"})
    assert resp.status_code == 409
    assert "dataset" in resp.content.decode()
    assert _count(tenant) == 1


def test_unknown_job_is_404_and_non_staff_get_404(console, globex, tenant):
    assert console.post("/console/jobs/tj_missing/retry", {"reason": "x"}).status_code == 404
    old = _failed(tenant)
    for client in (globex.session("owner"), globex.session("admin")):
        assert client.post(f"/console/jobs/{old.pk}/retry", {"reason": "x"}).status_code == 404
    anonymous = Client().post(f"/console/jobs/{old.pk}/retry", {"reason": "x"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert _count(tenant) == 1


def test_the_jobs_page_offers_retry_only_on_failed_and_cancelled_rows(console, tenant):
    failed = _failed(tenant)
    queued = _job(tenant)
    html = console.get("/console/jobs?status=failed").content.decode()
    assert f"/console/jobs/{failed.pk}/retry" in html
    html = console.get("/console/jobs").content.decode()
    assert queued.pk in html and f"/console/jobs/{queued.pk}/retry" not in html


def test_the_service_refuses_an_empty_reason_and_keeps_the_reason_short(tenant):
    old = _failed(tenant)
    with pytest.raises(ValidationFailed):
        jobs.training_job_retry(job=old, actor=Actor.system(), reason="  ")
    new = jobs.training_job_retry(job=old, actor=Actor.system(), reason="x" * 900)
    event = AuditEvent.objects.for_tenant(tenant.org).get(action="training_job.retried")
    assert event.target_id == new.pk and len(event.data["reason"]) == 500
    with pytest.raises(Conflict):
        jobs.training_job_retry(job=old, actor=Actor.system(), reason="again")


def test_the_tenants_dashboard_shows_a_job_the_staff_user_retried(console, acme):
    """``created_by`` of a retry is the staff user, who is no member of the tenant: the
    tenant's own pages list and show the job as usual."""
    api = acme.key("owner")
    old = _failed(SimpleNamespace(client=api, org=acme.org))
    assert console.post(f"/console/jobs/{old.pk}/retry", {"reason": "r"}).status_code == 302
    new = TrainingJob.objects.for_tenant(acme.org).get(retry_of=old)
    for role in ("owner", "viewer"):
        session = acme.session(role)
        listing = session.get("/app/training")
        assert listing.status_code == 200 and new.pk in listing.content.decode()
        assert session.get(f"/app/training/{new.pk}").status_code == 200


def test_a_tenant_at_its_spend_cap_gets_the_402_and_no_job(console, tenant):
    from decimal import Decimal

    from saas.billing.models import BillingAccount

    old = _failed(tenant)
    BillingAccount.objects.for_tenant(tenant.org).update(monthly_spend_cap=Decimal("0.00"))
    resp = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "customer asked"})
    assert resp.status_code == 402
    assert _count(tenant) == 1


def test_a_suspended_organisations_job_is_not_retried(console, tenant):
    from saas.tenancy.services.organizations import organization_suspend

    old = _failed(tenant)
    organization_suspend(organization=tenant.org, actor=Actor.system(), reason="unpaid")
    # The tenant itself cannot train now (403); a retry must not do it behind its back.
    resp = console.post(f"/console/jobs/{old.pk}/retry", {"reason": "customer asked"})
    assert resp.status_code == 403 and b"reactivate it" in resp.content
    assert _count(tenant) == 1
    assert not AuditEvent.objects.for_tenant(tenant.org).filter(action="training_job.retried")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_retries_of_one_job_at_once_queue_one_job():
    import threading

    from django.db import connections

    from saas.billing.models import Plan, PlanPrice, RateCard
    from saas.billing.seed import seed
    from tests.conftest import make_tenant

    if not Plan.objects.exists():  # a transactional test may start after a flush
        seed(Plan, PlanPrice, RateCard)
    t = make_tenant("retry-racer")
    old = _failed(t)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def retry() -> None:
        try:
            barrier.wait(timeout=10)
            jobs.training_job_retry(job=old, actor=Actor.system(), reason="race")
            outcomes.append("retried")
        except Conflict:
            outcomes.append("conflict")
        except BaseException as exc:  # reported below, not lost in the thread
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert sorted(outcomes) == ["conflict", "retried"]
    assert TrainingJob.objects.for_tenant(t.org).filter(retry_of=old).count() == 1
