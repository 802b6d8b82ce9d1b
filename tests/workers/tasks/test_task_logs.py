"""A training task's log lines carry its job, its tenant and the request that sent it.

The job is created through the API with an ``X-Request-ID``; its ticket goes over the real
broker (``REDIS_URL``) and a real worker (Celery's in-process test worker, with this project's
worker boot steps and logging set-up) trains it. Every line the task logs is then read back as
the production formatter writes it.
"""

from __future__ import annotations

import threading

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections

from saas.celery import Queue, TaskName
from saas.jobs.models import TrainingJob
from tests.conftest import make_tenant, small_text_rows, text_csv, upload
from workers.celery_app import app

pytestmark = [pytest.mark.tf, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", autouse=True)
def _tasks_registered():
    app.loader.import_default_modules()  # what a worker does at start: autodiscover_tasks


def test_training_task_lines_carry_job_tenant_and_the_sending_request(log_lines):
    assert settings.CELERY_BROKER_URL.startswith("redis"), "run the tests with REDIS_URL set"
    tenant = make_tenant("acme")
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    done = threading.Event()

    def _record(task=None, **_kwargs):
        if task is not None and task.name == TaskName.TRAIN:
            connections.close_all()  # the worker thread's own connection
            done.set()

    with app.connection_for_write() as conn:
        conn.default_channel.queue_declare(
            queue=Queue.TRAINING_CPU.value, durable=True, auto_delete=False
        )
        conn.default_channel.queue_purge(Queue.TRAINING_CPU.value)
    task_postrun.connect(_record, weak=False)
    try:
        with start_worker(
            app, queues=[Queue.TRAINING_CPU.value], perform_ping_check=False, loglevel="INFO"
        ):
            # The worker's start-up applied Django's LOGGING (Celery's setup_logging signal),
            # which replaced the root's handlers: capture from here on.
            log_lines.attach()
            created = tenant.client.post(
                "/v1/training-jobs",
                {"dataset": ds["id"], "hyperparameters": {"epochs": 1}, "seed": 0},
                format="json",
                HTTP_X_REQUEST_ID="req-train-42",
            )
            assert created.status_code == 201, created.content
            assert created["X-Request-ID"] == "req-train-42"
            assert done.wait(timeout=240), log_lines.text[-3000:]
    finally:
        task_postrun.disconnect(_record)
    job_id = created.json()["id"]
    job = TrainingJob.objects.unscoped_all_tenants().get(pk=job_id)
    assert job.status == "succeeded", job.error

    # The request's own line, and the ticket it sent: django-structlog's task_enqueued.
    assert log_lines.records(event="task_enqueued", request_id="req-train-42")
    # In the worker: the task's lifecycle with the sender's request and tenant.
    (started,) = log_lines.records(event="task_started", request_id="req-train-42")
    assert started["task"] == TaskName.TRAIN
    assert started["organization_id"] == tenant.org.pk
    assert "ip" not in started  # the request's client address stays with the request
    task_id = started["task_id"]
    # Every line of the training attempt: job, tenant, attempt, and the request.
    attempt = log_lines.records(logger="workers.tasks.training", task_id=task_id)
    assert [r["event"].split(":")[0].split(" after")[0] for r in attempt] == [
        "training attempt started",
        "training attempt ended",
    ]
    for line in attempt:
        assert line["job_id"] == job_id
        assert line["organization_id"] == tenant.org.pk
        assert line["attempt"] == 1
        assert line["request_id"] == "req-train-42"
    assert log_lines.records(event="task_succeeded", task_id=task_id)
    assert tenant.key not in log_lines.text
