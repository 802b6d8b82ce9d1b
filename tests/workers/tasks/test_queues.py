"""Queues: every beat task goes to ``maintenance``, and runs there while training is busy.

The second test sends beat's entries over the real broker (``REDIS_URL``) exactly as beat
does, with a training message waiting on ``training-cpu`` the whole time (what a ``-c 1``
training worker busy with an hour-long job leaves queued), and runs a worker that consumes
``maintenance`` only, as the maintenance worker of ``make run``, ``make demo`` and
docker-compose does.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from celery.contrib.testing.worker import start_worker
from celery.schedules import crontab
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections

from saas.celery import MAINTENANCE_TASKS, Queue, TaskName
from workers.celery_app import app

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module", autouse=True)
def _tasks_registered():
    app.loader.import_default_modules()  # what a worker does at start: autodiscover_tasks


def _interval(schedule) -> timedelta:
    """How often a beat entry runs (the schedules used here: seconds, or a crontab)."""
    if isinstance(schedule, int | float):
        return timedelta(seconds=schedule)
    assert isinstance(schedule, crontab)
    if schedule.day_of_month != set(range(1, 32)):
        return timedelta(days=28)  # monthly
    if len(schedule.hour) == 24 and len(schedule.minute) == 1:
        return timedelta(hours=1)
    raise AssertionError(f"unexpected schedule {schedule!r}")


def test_every_beat_task_routes_to_maintenance():
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled == set(MAINTENANCE_TASKS)
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        task = app.tasks[entry["task"]]
        assert entry["options"]["queue"] == Queue.MAINTENANCE, name
        assert task.queue == Queue.MAINTENANCE, name
        # Sent with no queue at all (a shell, send_task), the router still picks maintenance.
        assert app.amqp.router.route({}, entry["task"])["queue"].name == Queue.MAINTENANCE
        # Idempotent, so acknowledged late; and short, far below the training time limit.
        assert task.acks_late is True, name
        assert task.time_limit < settings.CELERY_VISIBILITY_TIMEOUT, name
        assert task.time_limit <= settings.CELERY_TASK_TIME_LIMIT, name
        expires = entry["options"].get("expires")
        if expires is not None:  # at most one copy of an entry waits
            assert timedelta(seconds=expires) <= _interval(entry["schedule"]), name
    # Period close must not be dropped: monthly, and safe to run late.
    assert "expires" not in settings.CELERY_BEAT_SCHEDULE["close-billing-period"]["options"]
    # Storage is billed for the hour in which the sample runs (scheduled at :05).
    assert settings.CELERY_BEAT_SCHEDULE["sample-storage"]["options"]["expires"] <= 55 * 60


def test_acks_late_only_on_idempotent_tasks():
    assert settings.CELERY_TASK_ACKS_LATE is False  # a new task opts in, with a reason
    assert app.tasks[TaskName.TRAIN].acks_late is True


def test_online_predictions_have_no_celery_queue():
    # The data plane (serve) answers predictions; Celery only flushes its metering windows.
    assert {q.value for q in Queue} == {"training-cpu", "training-gpu", "maintenance"}
    ours = {name: task for name, task in app.tasks.items() if name.startswith("trainyard.")}
    assert set(ours) == {t.value for t in TaskName}
    for name, task in ours.items():
        assert app.amqp.router.route({}, name)["queue"].name in set(Queue), name
        assert getattr(task, "queue", None) in {None, *Queue}, name
    flush = settings.CELERY_BEAT_SCHEDULE["flush-prediction-windows"]
    assert flush["task"] == TaskName.FLUSH_PREDICTIONS and flush["schedule"] == 10.0
    assert app.tasks[TaskName.FLUSH_PREDICTIONS].queue == Queue.MAINTENANCE


def test_beat_tasks_run_while_the_training_queue_is_busy(db):
    # The suite runs against real Redis (`make test` sets REDIS_URL); a filesystem broker here
    # would not prove routing over the broker that production uses, so say so and fail.
    assert settings.CELERY_BROKER_URL.startswith("redis"), "run the tests with REDIS_URL set"
    finished: dict[str, str] = {}
    all_done = threading.Event()

    def _record(task=None, state=None, **_kwargs):
        finished[task.name] = state
        connections.close_all()  # the worker thread's own connection, before the test DB goes
        if set(MAINTENANCE_TASKS) <= finished.keys():
            all_done.set()

    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in (Queue.MAINTENANCE, Queue.TRAINING_CPU):
            channel.queue_declare(queue=queue.value, durable=True, auto_delete=False)
            channel.queue_purge(queue.value)
        # A training job waiting behind the busy training worker, which nobody here consumes.
        app.send_task(TaskName.TRAIN, kwargs={"job_id": "tj_waiting"}, queue=Queue.TRAINING_CPU)
        for entry in settings.CELERY_BEAT_SCHEDULE.values():  # as celery.beat sends them
            app.send_task(entry["task"], **entry["options"])

        task_postrun.connect(_record, weak=False)
        try:
            with start_worker(
                app, queues=[Queue.MAINTENANCE.value], perform_ping_check=False, loglevel="WARNING"
            ):
                assert all_done.wait(timeout=20), finished
        finally:
            task_postrun.disconnect(_record)
        try:
            assert finished == {name: "SUCCESS" for name in MAINTENANCE_TASKS}
            # The training message is still waiting: nothing above needed the training worker.
            assert channel.queue_declare(queue=Queue.TRAINING_CPU.value, passive=True)[1] == 1
        finally:
            channel.queue_purge(Queue.TRAINING_CPU.value)


def test_docker_compose_runs_one_maintenance_worker_and_beat():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    consumers = {
        name: svc["command"]
        for name, svc in compose.items()
        if "worker" in str(svc.get("command", ""))
    }
    maintenance = [n for n, cmd in consumers.items() if "-Q maintenance" in cmd]
    assert len(maintenance) == 1, consumers
    assert "-B" in consumers[maintenance[0]].split() or "beat" in compose, compose
    for name, cmd in consumers.items():
        if name not in maintenance:
            assert "maintenance" not in cmd, (name, cmd)
