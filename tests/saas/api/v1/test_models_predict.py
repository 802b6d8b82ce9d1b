"""``POST /v1/models/{id}/predict`` reaching the web tier: forwarded to a real data plane.

The reverse proxy sends this route to ``serve``; a request that reaches gunicorn anyway (a proxy
misconfigured, a test client) is forwarded by ``saas.api.v1.models.ModelPredictView`` with the
caller's API key, or a signed internal token for a signed-in member. Here a real ``python -m
serve`` process (no web upstream) answers, on the test database and Redis, so its rows are
committed (``transactional_db``). The data plane's own behaviour is tested in tests/serve/;
these tests only prove that the web tier passes requests and answers through unchanged.
Without a data plane the route is a 503 (tests/saas/api/test_auth_and_errors.py).
"""

from __future__ import annotations

import io
import time

import pytest
import redis as redis_lib
from django.conf import settings as django_settings

from saas.billing.models import BillingAccount
from saas.common.actor import Actor
from saas.datasets.services import dataset_create
from saas.jobs.models import TrainingJob
from saas.jobs.services import training_job_create
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from saas.registry.services import model_artifact_store, model_register
from scripts.stack import Stack
from tests.conftest import small_text_rows, text_csv

# serialized_rollback: each test starts from the migrated rows (plans, content types) and its
# flush leaves none recreated behind it, as the serialized-rollback tests after it expect.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _clear_data_plane_keys() -> None:
    r = redis_lib.Redis.from_url(django_settings.REDIS_URL)
    for k in r.scan_iter("dp:*"):
        r.delete(k)


@pytest.fixture(scope="module")
def data_plane(django_db_setup, tmp_path_factory):
    """One ``serve`` process for the module, on the test database; ``.storage`` is where it
    reads artifacts from (point ``MEDIA_ROOT`` there to register a model it can load)."""
    db = django_settings.DATABASES["default"]
    storage = tmp_path_factory.mktemp("serve-storage")
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": django_settings.REDIS_URL,
        "TRAINYARD_STORAGE_DIR": str(storage),
        "TRAINYARD_MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("serve-cache")),
        "TRAINYARD_SERVE_SLOTS": "1",
    }
    _clear_data_plane_keys()
    with Stack(env=env, log_dir=tmp_path_factory.mktemp("serve-logs")) as stack:
        stack.start_serve(upstream=False)
        stack.wait_ready("serve", stack.base_url + "/healthz/serve")
        stack.storage = storage
        yield stack
    _clear_data_plane_keys()


@pytest.fixture
def forwarded(data_plane, settings):
    settings.TRAINYARD_SERVE_URL = data_plane.base_url
    return data_plane


def succeeded_job(org) -> TrainingJob:
    data = text_csv(small_text_rows())
    ds = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="text-classification",
        name="d.csv",
        actor=Actor.system(),
    )
    job = training_job_create(organization=org, dataset=ds, actor=Actor.system())
    TrainingJob.objects.for_tenant(org).filter(pk=job.pk).update(status="succeeded")
    return job


def model_row(org, task: str = "text-classification") -> TrainedModel:
    """A model row without an artifact: enough for requests the data plane refuses before
    it would load the model."""
    return TrainedModel.objects.for_tenant(org).create(
        organization=org,
        job_id=succeeded_job(org).pk,
        task=task,
        base_model="x",
        classes=["negative", "positive"],
        metrics={},
        artifact_key="missing",
        artifact_bytes=0,
        artifact_sha256="0" * 64,
    )


def test_a_keys_bad_inputs_get_the_data_planes_problem(forwarded, tenant):
    model = model_row(tenant.org)
    r = tenant.client.post(f"/v1/models/{model.pk}/predict", {"inputs": []}, format="json")
    assert r.status_code == 400, r.content
    assert r["Content-Type"].startswith("application/problem+json")
    assert r.json()["errors"] == [{"field": "inputs", "message": "send at least one input"}]
    # A multipart body reaches it with its boundary intact: the data plane parses it.
    r = tenant.client.post(
        f"/v1/models/{model.pk}/predict",
        {"files": io.BytesIO(b"not an image")},
        format="multipart",
    )
    assert r.status_code == 400, r.content
    assert r.json()["errors"] == [
        {"field": "files", "message": "files are only accepted by image models"}
    ]


def test_a_signed_in_member_is_forwarded_with_an_internal_token(forwarded, acme):
    # The member has no API key: the web tier signs a short-lived token naming them; the data
    # plane accepts it (a 400 about the inputs comes after authentication and the model lookup).
    model = model_row(acme.org)
    r = acme.session("developer").post(
        f"/v1/models/{model.pk}/predict", {"inputs": ["ok", 3]}, format="json"
    )
    assert r.status_code == 400, r.content
    assert r.json()["errors"] == [
        {"field": "inputs[1]", "message": "this text model takes strings"}
    ]


def test_another_tenants_model_is_a_404_and_never_reaches_the_data_plane(
    forwarded, tenant, other_tenant
):
    model = model_row(tenant.org)
    r = other_tenant.client.post(f"/v1/models/{model.pk}/predict", {"inputs": []}, format="json")
    assert r.status_code == 404, r.content  # the data plane would have said 400


@pytest.fixture(scope="module")
def saved_text_model(tmp_path_factory) -> tuple[str, list[str]]:
    """``(SavedModel dir, classes)``: 2 epochs of the text runner on the small review rows."""
    from saas.contract.spec import TEXT, TrainSpec
    from workers.ml import runners

    tmp = tmp_path_factory.mktemp("forward-model")
    (tmp / "rows.csv").write_bytes(text_csv(small_text_rows()))
    (tmp / "out").mkdir()
    spec = TrainSpec(
        task=TEXT,
        dataset_path=str(tmp / "rows.csv"),
        output_dir=str(tmp / "out"),
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 2, "batch_size": 8, "validation_split": 0.25},
        seed=0,
    )
    result = runners.train(spec, on_epoch=lambda *_: None)
    return result.saved_model_dir, result.classes


@pytest.mark.tf
def test_an_answered_prediction_comes_back_unchanged_and_is_billed_once(
    forwarded, tenant, settings, saved_text_model
):
    settings.MEDIA_ROOT = forwarded.storage  # where the data plane reads artifacts
    model_id = "mdl_forwarded1"
    model_register(
        model_id=model_id,
        organization_id=tenant.org.pk,
        job_id=succeeded_job(tenant.org).pk,
        task="text-classification",
        base_model="text-embedding-bag",
        classes=list(saved_text_model[1]),
        metrics={},
        artifact=model_artifact_store(
            organization_id=tenant.org.pk, model_id=model_id, saved_model_dir=saved_text_model[0]
        ),
    )
    r = tenant.client.post(
        f"/v1/models/{model_id}/predict",
        {"inputs": ["great film, loved it", "awful, boring"]},
        format="json",
    )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["model"] == model_id and len(body["predictions"]) == 2
    assert body["usage"]["predictions"] == 2
    # The data plane's input-weighted limit, not the web tier's per-request one.
    plan = BillingAccount.objects.for_tenant(tenant.org).get().plan
    assert int(r["RateLimit-Limit"]) in {
        plan.predictions_per_key,
        plan.predictions_per_organization,
    }
    deadline = time.monotonic() + 15
    total = 0
    while time.monotonic() < deadline:  # serve flushes closed 1-s windows every second
        total = sum(
            e.quantity
            for e in UsageEvent.objects.for_tenant(tenant.org).filter(meter="predictions")
        )
        if total:
            break
        time.sleep(0.2)
    time.sleep(2.5)  # a later flush must not count it again
    rows = list(UsageEvent.objects.for_tenant(tenant.org).filter(meter="predictions"))
    assert [int(e.quantity) for e in rows] == [2], rows
