"""The data plane in-process: the real ASGI app (Starlette's TestClient runs its lifespan and
event loop in a thread), a real tiny SavedModel trained by the text runner, real PostgreSQL
and Redis. The app reads the database from threads of its own, so these tests commit their
rows (``transactional_db``)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis as redis_lib
from starlette.testclient import TestClient

from saas.common.actor import Actor
from saas.datasets.services import dataset_create
from saas.jobs.services import training_job_create
from saas.registry.services import model_artifact_store, model_register
from tests.conftest import image_zip, png_bytes, small_text_rows, text_csv

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


def image_files() -> dict[str, bytes]:
    """A tiny two-class image archive's members: dark and light 8x8 greyscale PNGs."""
    files = {f"dark/{i}.png": png_bytes(i * 3) for i in range(12)}
    files.update({f"light/{i}.png": png_bytes(255 - i * 3) for i in range(12)})
    return files


@pytest.fixture(scope="session")
def image_saved_model(tmp_path_factory) -> tuple[str, list[str]]:
    """``(SavedModel dir, classes)`` of a 1-epoch ``cnn-small`` image model (16x16 inputs) on
    :func:`image_files` (a few seconds on CPU)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from saas.contract.spec import IMAGE, TrainSpec
    from workers.ml import runners

    tmp = tmp_path_factory.mktemp("serve-image-model")
    zip_path = tmp / "images.zip"
    zip_path.write_bytes(image_zip(image_files()))
    (tmp / "out").mkdir()
    spec = TrainSpec(
        task=IMAGE,
        dataset_path=str(zip_path),
        output_dir=str(tmp / "out"),
        base_model="cnn-small",
        hyperparameters={"epochs": 1, "batch_size": 8, "image_size": 16, "validation_split": 0.25},
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
    return _register(org, job, saved, model_id)


def register_image_model(org, saved: tuple[str, list[str]], model_id: str) -> str:
    """Register the image SavedModel ``saved`` as a ``cnn-small`` model of ``org``."""
    data = image_zip(image_files())
    ds = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="image-classification",
        name="d.zip",
        actor=Actor.system(),
    )
    job = training_job_create(
        organization=org, dataset=ds, base_model="cnn-small", actor=Actor.system()
    )
    return _register(org, job, saved, model_id)


def _register(org, job, saved: tuple[str, list[str]], model_id: str) -> str:
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
    return replace(base, **{"auth_refresh_s": 0.2, "flush_interval_s": 0.5, **overrides})


@contextlib.contextmanager
def serve_app(**overrides) -> Iterator[TestClient]:
    """Another data plane "replica" (its own app, caches and event loop) configured with
    :func:`serve_config` ``overrides``; its lifespan runs for the ``with`` block."""
    from serve.app import create_app

    with TestClient(create_app(serve_config(**overrides)), raise_server_exceptions=True) as c:
        yield c


@pytest.fixture
def serve_client(transactional_db, clean_redis, settings):
    """A TestClient on the data plane app (lifespan started); ``serve_client.app`` is it."""
    with serve_app() as client:
        yield client


@pytest.fixture
def text_model(tenant, text_saved_model) -> str:
    return register_text_model(tenant.org, text_saved_model, "mdl_servetext1")


@pytest.fixture
def image_model(tenant, image_saved_model) -> str:
    return register_image_model(tenant.org, image_saved_model, "mdl_serveimage1")
