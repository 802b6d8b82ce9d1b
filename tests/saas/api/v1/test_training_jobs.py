"""POST /v1/training-jobs without a worker: validation, queue info, cancellation, isolation."""

import pytest

from saas.billing.services import billing_plan_change
from saas.common.actor import Actor
from saas.jobs.models import JobEvent, TrainingJob
from tests.conftest import make_tenant, set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tenant):
    return upload(tenant.client, text_csv(small_text_rows())).json()


def create(client, **body):
    return client.post("/v1/training-jobs", body, format="json")


def test_defaults_are_filled_in(tenant, dataset):
    r = create(tenant.client, dataset=dataset["id"], seed=7)
    assert r.status_code == 201, r.content
    job = r.json()
    assert job["object"] == "training_job" and job["id"].startswith("tj_")
    assert job["base_model"] == "text-embedding-bag"
    assert set(job["hyperparameters"]) == {
        "epochs",
        "batch_size",
        "learning_rate",
        "validation_split",
    }
    assert job["progress"] == {"epoch": 0, "epochs": job["hyperparameters"]["epochs"]}
    assert job["seed"] == 7 and job["device"] == "cpu"
    assert job["metrics"] is None and job["model"] is None
    events = tenant.client.get(f"/v1/training-jobs/{job['id']}/events").json()["data"]
    assert [e["type"] for e in events] == ["created"]


def test_enqueued_only_after_commit(tenant, dataset, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        create(tenant.client, dataset=dataset["id"])
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    "hyperparameters, needles",
    [
        ({"epochs": 0}, ["hyperparameters.epochs", "between 1 and 200"]),
        ({"batch_size": 10**9}, ["hyperparameters.batch_size", "between 1 and 1024"]),
        ({"learning_rate": -0.1}, ["hyperparameters.learning_rate", "between"]),
        ({"validation_split": 0.9}, ["hyperparameters.validation_split"]),
        ({"epochs": "ten"}, ["integer"]),
        ({"epochs": 2.5}, ["integer"]),
        # dropout is a real runner hyperparameter since the ML contract (issue 9, item 4):
        # accepted in range, a 400 outside it; names no runner reads stay unknown.
        ({"dropout": 0.95}, ["hyperparameters.dropout", "between 0 and 0.9"]),
        ({"momentum": 0.5}, ["unknown"]),
        ({"fine_tune": True}, ["unknown for text-embedding-bag"]),
        ([1, 2], ["object"]),
    ],
)
def test_bad_hyperparameters(tenant, dataset, hyperparameters, needles):
    r = create(tenant.client, dataset=dataset["id"], hyperparameters=hyperparameters)
    assert r.status_code == 400, r.content
    body = r.json()
    text = " ".join(
        [body["detail"]] + [f"{e['field']} {e['message']}" for e in body.get("errors", [])]
    )
    for n in needles:
        assert n in text, body
    assert TrainingJob.objects.for_tenant(tenant.org).count() == 0


def test_all_bad_fields_reported_at_once(tenant, dataset):
    r = create(
        tenant.client,
        dataset=dataset["id"],
        hyperparameters={"epochs": 0, "batch_size": 10**9, "learning_rate": -1},
    )
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {
        "hyperparameters.epochs",
        "hyperparameters.batch_size",
        "hyperparameters.learning_rate",
    }


def test_unknown_base_model_and_dataset(tenant, dataset):
    r = create(tenant.client, dataset=dataset["id"], base_model="cnn-small")
    assert r.status_code == 400 and "text-embedding-bag" in r.json()["errors"][0]["message"]
    r = create(tenant.client, dataset="ds_nope")
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "dataset"
    r = create(tenant.client)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "dataset"


def test_malformed_json_is_a_problem(tenant):
    r = tenant.client.post("/v1/training-jobs", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r["Content-Type"].startswith("application/problem+json")


def test_queue_position_and_wait_reason(tenant, dataset, settings):
    set_plan_limits("free", max_running_jobs=1)
    other = make_tenant("initech")
    other_ds = upload(other.client, text_csv(small_text_rows())).json()
    first = create(other.client, dataset=other_ds["id"]).json()
    mine = create(tenant.client, dataset=dataset["id"]).json()
    assert first["queue_position"] == 1 and mine["queue_position"] == 2
    assert mine["wait_reason"] == "capacity"
    # While one of my jobs runs, the next waits for my tenant's limit, not for capacity.
    running = create(tenant.client, dataset=dataset["id"]).json()
    TrainingJob.objects.for_tenant(tenant.org).filter(pk=running["id"]).update(status="running")
    again = tenant.client.get(f"/v1/training-jobs/{mine['id']}").json()
    assert again["wait_reason"] == "tenant_limit"
    assert tenant.client.get(f"/v1/training-jobs/{running['id']}").json()["queue_position"] is None


def test_the_list_shows_what_each_job_shows(tenant, dataset, settings):
    """Queue position, wait reason and model come from the selector's SQL in the list and in
    the detail alike: per device queue, across tenants, the model only once succeeded."""
    set_plan_limits(max_active_jobs=10, max_running_jobs=1)
    # The free plan refuses GPU time (its GPU quota is 0); pro sells it.
    billing_plan_change(organization=tenant.org, plan_code="pro", actor=Actor.system())
    other = make_tenant("initech")
    other_ds = upload(other.client, text_csv(small_text_rows())).json()
    create(other.client, dataset=other_ds["id"])
    ids = [create(tenant.client, dataset=dataset["id"]).json()["id"] for _ in range(3)]
    gpu = create(tenant.client, dataset=dataset["id"], device="gpu").json()
    assert gpu["queue_position"] == 1  # its own queue
    listed = {j["id"]: j for j in tenant.client.get("/v1/training-jobs").json()["data"]}
    assert [listed[i]["queue_position"] for i in ids] == [2, 3, 4]
    for job_id, job in listed.items():
        detail = tenant.client.get(f"/v1/training-jobs/{job_id}").json()
        assert (job["queue_position"], job["wait_reason"], job["model"]) == (
            detail["queue_position"],
            detail["wait_reason"],
            detail["model"],
        )
    TrainingJob.objects.for_tenant(tenant.org).filter(pk=ids[0]).update(status="running")
    listed = {j["id"]: j for j in tenant.client.get("/v1/training-jobs").json()["data"]}
    assert listed[ids[0]]["queue_position"] is None and listed[ids[0]]["wait_reason"] is None
    assert [listed[i]["queue_position"] for i in ids[1:]] == [2, 3]
    assert {listed[i]["wait_reason"] for i in ids[1:]} == {"tenant_limit"}
    assert all(j["model"] is None for j in listed.values())


def test_cancel_queued_job(tenant, dataset):
    job = create(tenant.client, dataset=dataset["id"]).json()
    r = tenant.client.post(f"/v1/training-jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["usage"]["billing_reason"] == "cancelled_by_user"
    r = tenant.client.post(f"/v1/training-jobs/{job['id']}/cancel")
    assert r.status_code == 409 and "already finished (cancelled)" in r.json()["detail"]
    types = list(JobEvent.objects.for_tenant(tenant.org).values_list("type", flat=True))
    assert types == ["created", "cancelled"]


def test_cancel_running_job_requests_a_stop(tenant, dataset):
    job = create(tenant.client, dataset=dataset["id"]).json()
    TrainingJob.objects.for_tenant(tenant.org).filter(pk=job["id"]).update(status="running")
    r = tenant.client.post(f"/v1/training-jobs/{job['id']}/cancel")
    assert r.json()["status"] == "running" and r.json()["cancel_requested"] is True


def test_other_tenant_gets_404_and_no_side_effect(tenant, other_tenant, dataset):
    job = create(tenant.client, dataset=dataset["id"]).json()
    c = other_tenant.client
    for path in (
        f"/v1/training-jobs/{job['id']}",
        f"/v1/training-jobs/{job['id']}/events",
        f"/v1/training-jobs/{job['id']}/misclassified",
        f"/v1/datasets/{dataset['id']}",
    ):
        r = c.get(path)
        assert r.status_code == 404, path
        assert r.json()["title"] == "Not found"
    assert c.post(f"/v1/training-jobs/{job['id']}/cancel").status_code == 404
    assert c.delete(f"/v1/datasets/{dataset['id']}").status_code == 404
    # another tenant's dataset id in a body is the same 400 as a missing one
    r = create(c, dataset=dataset["id"])
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "dataset"
    assert tenant.client.get(f"/v1/training-jobs/{job['id']}").json()["status"] == "queued"
    assert c.get("/v1/training-jobs").json()["data"] == []
    assert c.get("/v1/datasets").json()["data"] == []


def test_list_pagination(tenant, dataset):
    ids = [create(tenant.client, dataset=dataset["id"]).json()["id"] for _ in range(5)]
    page = tenant.client.get("/v1/training-jobs?limit=2").json()
    seen = [j["id"] for j in page["data"]]
    while page["next_cursor"]:
        page = tenant.client.get(f"/v1/training-jobs?limit=2&cursor={page['next_cursor']}").json()
        seen += [j["id"] for j in page["data"]]
    assert seen == list(reversed(ids))
    assert len(tenant.client.get("/v1/training-jobs?limit=1000").json()["data"]) == 5


def test_unknown_top_level_field_is_rejected(tenant, dataset):
    r = create(tenant.client, dataset=dataset["id"], hyperparameter={"epochs": 3})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "hyperparameter"


def test_validation_split_too_small_for_the_classes(tenant):
    rows = [(f"text {i} {c}", f"class{c}") for c in range(12) for i in range(2)]
    ds = upload(tenant.client, text_csv(rows)).json()
    r = create(tenant.client, dataset=ds["id"], hyperparameters={"validation_split": 0.1})
    assert (
        r.status_code == 400
        and r.json()["errors"][0]["field"] == "hyperparameters.validation_split"
    )
    assert "12 classes" in r.json()["detail"]
