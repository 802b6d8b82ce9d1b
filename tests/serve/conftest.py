"""The data plane in-process: the real ASGI app (Starlette's TestClient runs its lifespan and
event loop in a thread), a real tiny SavedModel trained by the text runner, real PostgreSQL
and Redis. The app reads the database from threads of its own, so these tests commit their
rows (``transactional_db``)."""

from __future__ import annotations

import io
import os
from dataclasses import replace

import pytest
import redis as redis_lib
from starlette.testclient import TestClient

from saas.common.actor import Actor
from saas.datasets.services import dataset_create
from saas.jobs.services import training_job_create
from saas.registry.services import model_artifact_store, model_register
from tests.conftest import small_text_rows, text_csv

pytestmark = pytest.mark.tf


@pytest.fixture(scope="session")
def text_saved_model(tmp_path_factory) -> tuple[str, list[str]]:
    """``(SavedModel dir, classes)`` of a 2-epoch text model on the small review rows."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from saas.contract.spec import TEXT, TrainSpec
    from workers.ml import runners

    tmp = tmp_path_factory.mktemp("serve-model")
    csv_path = tmp / "rows.csv"
    csv_path.write_bytes(text_csv(small_text_rows()))
    (tmp / "out").mkdir()
    spec = TrainSpec(
        task=TEXT,
        dataset_path=str(csv_path),
        output_dir=str(tmp / "out"),
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 2, "batch_size": 8, "validation_split": 0.25},
        seed=0,
    )
    result = runners.train(spec, on_epoch=lambda *_: None)
    return result.saved_model_dir, result.classes


def register_text_model(org, saved: tuple[str, list[str]], model_id: str) -> str:
    """Register ``saved`` as a model of ``org`` (a real dataset, job and stored artifact)."""
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
    artifact = model_artifact_store(
        organization_id=org.pk, model_id=model_id, saved_model_dir=saved[0]
    )
    model_register(
        model_id=model_id,
        organization_id=org.pk,
        job_id=job.pk,
        task=job.task,
        base_model=job.base_model,
        classes=list(saved[1]),
        metrics={"accuracy": 0.9},
        artifact=artifact,
    )
    return model_id


@pytest.fixture
def clean_redis(settings):
    r = redis_lib.Redis.from_url(settings.REDIS_URL)
    for pattern in ("dp:*", "rl:*"):
        for k in r.scan_iter(pattern):
            r.delete(k)
    yield r
    for k in r.scan_iter("dp:*"):
        r.delete(k)


def serve_config(**overrides):
    from serve.config import ServeConfig

    base = ServeConfig.from_env()
    return replace(base, auth_refresh_s=0.2, flush_interval_s=0.5, **overrides)


@pytest.fixture
def serve_client(transactional_db, clean_redis, settings):
    """A TestClient on the data plane app (lifespan started); ``serve_client.app`` is it."""
    from serve.app import create_app

    with TestClient(create_app(serve_config()), raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def text_model(tenant, text_saved_model) -> str:
    return register_text_model(tenant.org, text_saved_model, "mdl_servetext1")
