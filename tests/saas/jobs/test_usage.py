"""The job's ``usage``: one typed JobUsage, the same JSON as ever, stored and served alike."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from saas.common.actor import Actor
from saas.jobs import services as jobs
from saas.jobs.models import TrainingJob
from saas.jobs.usage import JobUsage
from tests.conftest import small_text_rows, text_csv, upload
from tests.saas.jobs.test_state_machine import RESOURCES, fake_result, reload

LINES = {"training_compute_seconds": {"billable": "1.5", "unit_price": "0.28", "amount": "0.42"}}


def _jsonb_order(d: dict) -> list[str]:
    return sorted(d, key=lambda k: (len(k), k))


# ---- each stage's JSON is exactly what the four hand-built dicts used to be -----------------


def test_running_shape():
    u = JobUsage.running(cost_so_far=Decimal("0.0123"), seconds_so_far=Decimal("1.5"))
    assert u.to_dict() == {"cost_so_far": "0.0123", "seconds_so_far": 1.5, "billing_reason": None}


def test_not_billed_shape():
    assert JobUsage.not_billed().to_dict() == {
        "billing_reason": "not_billed",
        "charge": "0.00",
        "billable_seconds": 0.0,
    }


def test_cancelled_while_queued_shape_keeps_integer_zeros():
    d = JobUsage.cancelled_while_queued(device="gpu").to_dict()
    assert d == {
        "billing_reason": "cancelled_by_user",
        "billable_seconds": 0.0,
        "charge": "0.00",
        "wall_seconds": 0,
        "cpu_seconds": 0,
        "examples_processed": 0,
        "device": "gpu",
    }
    assert type(d["wall_seconds"]) is int and type(d["billable_seconds"]) is float


def test_measured_and_priced_shape():
    resources = {"wall_seconds": 1.23456, "cpu_seconds": 2.5, "device": "cpu"}  # no peak: None
    u = JobUsage().measured(resources=resources, examples=60, reason="completed")
    assert u.to_dict() == {
        "billable_seconds": 1.235,
        "charge": "0.00",
        "cost_so_far": "0.00",
        "wall_seconds": 1.235,
        "cpu_seconds": 2.5,
        "examples_processed": 60,
        "device": "cpu",
        "peak_memory_bytes": None,
        "billing_reason": "completed",
    }
    priced = u.priced(charge=Decimal("0.42"), lines=LINES).to_dict()
    assert priced["charge"] == priced["cost_so_far"] == "0.42" and priced["charge_lines"] == LINES


def test_failure_after_an_epoch_keeps_the_epoch_figures():
    epoch = JobUsage.running(cost_so_far=Decimal("0.01"), seconds_so_far=0.7).to_dict()
    platform = JobUsage.from_dict(epoch).with_reason("failed_platform").to_dict()
    assert platform == {
        "cost_so_far": "0.01",
        "seconds_so_far": 0.7,
        "billing_reason": "failed_platform",
    }
    unbilled = (
        JobUsage.from_dict(epoch)
        .measured(resources=RESOURCES, examples=0, reason="failed_platform", billed=False)
        .to_dict()
    )
    assert unbilled["billable_seconds"] == 0.0 and unbilled["wall_seconds"] == 1.5
    assert unbilled["seconds_so_far"] == 0.7 and unbilled["cost_so_far"] == "0.00"
    assert JobUsage.from_dict(None).with_reason("failed_platform").to_dict() == {
        "billing_reason": "failed_platform"
    }


@pytest.mark.parametrize(
    "usage",
    [
        JobUsage(),
        JobUsage.not_billed(),
        JobUsage.running(cost_so_far=Decimal("0.0100"), seconds_so_far=3),
        JobUsage.cancelled_while_queued(device="cpu"),
        JobUsage()
        .measured(resources=RESOURCES, examples=5, reason="completed")
        .priced(charge=Decimal("1.2345"), lines=LINES),
    ],
)
def test_round_trip_is_lossless_and_in_jsonb_order(usage):
    d = usage.to_dict()
    assert JobUsage.from_dict(d) == usage
    assert json.dumps(JobUsage.from_dict(d).to_dict()) == json.dumps(d)
    assert list(d) == _jsonb_order(d)


def test_unknown_key_is_refused():
    with pytest.raises(TypeError):
        JobUsage.from_dict({"billing_reason": None, "surprise": 1})


# ---- against PostgreSQL: what the API serves is byte-for-byte what the row holds ------------


def _served_equals_stored(tenant, job):
    stored = (
        TrainingJob.objects.for_tenant(tenant.org).values_list("usage", flat=True).get(pk=job.pk)
    )
    served = json.loads(tenant.client.get(f"/v1/training-jobs/{job.pk}").content)["usage"]
    listed = next(
        j["usage"]
        for j in json.loads(tenant.client.get("/v1/training-jobs").content)["data"]
        if j["id"] == job.pk
    )
    assert json.dumps(served) == json.dumps(stored) == json.dumps(listed)
    return stored


@pytest.mark.django_db
def test_every_stage_is_served_as_stored(tenant, tmp_path):
    ds = upload(tenant.client, text_csv(small_text_rows())).json()

    def new_job():
        r = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json")
        return TrainingJob.objects.for_tenant(tenant.org).get(pk=r.json()["id"])

    fresh = new_job()
    assert _served_equals_stored(tenant, fresh) == {}
    jobs.training_job_cancel(job=fresh, actor=Actor.system())
    assert _served_equals_stored(tenant, fresh)["billing_reason"] == "cancelled_by_user"

    running = new_job()
    start = jobs.training_job_start(job_id=running.pk)
    jobs.JobMonitor(start).on_epoch(1, {"loss": 0.5, "accuracy": 0.75})
    assert _served_equals_stored(tenant, running)["billing_reason"] is None
    jobs.training_job_fail(start=start, code="input", message="bad rows", resources=RESOURCES)
    failed = _served_equals_stored(tenant, running)
    assert failed["billing_reason"] == "failed_input" and "seconds_so_far" in failed
    assert "charge_lines" in failed

    done = new_job()
    start = jobs.training_job_start(job_id=done.pk)
    jobs.training_job_complete(start=start, result=fake_result(tmp_path), resources=RESOURCES)
    assert _served_equals_stored(tenant, done)["billing_reason"] == "completed"
    assert reload(done).status == "succeeded"
