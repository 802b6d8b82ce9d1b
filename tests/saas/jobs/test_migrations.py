"""jobs 0003: training jobs from before ``TrainingJob.created_by`` get the user who issued
their API key, across every tenant; rows that name a user keep it; reversing does nothing."""

from __future__ import annotations

import importlib
import io

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunPython

from saas.apikeys.services import api_key_create
from saas.common.actor import Actor
from saas.datasets.services import dataset_create
from saas.jobs.models import TrainingJob
from saas.jobs.services import training_job_create
from tests.conftest import set_plan_limits, small_text_rows, text_csv

pytestmark = pytest.mark.django_db
NAME = "0003_backfill_trainingjob_created_by"


def _job(org, actor: Actor) -> TrainingJob:
    data = text_csv(small_text_rows())
    dataset = dataset_create(
        organization=org,
        file=io.BytesIO(data),
        size=len(data),
        task="text-classification",
        name="reviews.csv",
        actor=actor,
    )
    return training_job_create(organization=org, dataset=dataset, actor=actor)


def _run_forwards() -> None:
    migration = importlib.import_module(f"saas.jobs.migrations.{NAME}")
    state = MigrationLoader(connection).project_state(("jobs", NAME)).apps
    migration.forwards(state, None)


def test_backfill_takes_the_keys_user_for_every_tenant_and_keeps_set_users(acme, globex):
    set_plan_limits(max_active_jobs=10)
    developer, admin = acme.users["developer"], acme.users["admin"]
    dev_key = acme.key("developer").api_key
    globex_key = globex.key("owner").api_key
    nobodys_key = api_key_create(organization=acme.org, actor=Actor.system()).api_key
    # An API key actor without its user stores the key alone, as rows made before 0002 did.
    old = _job(acme.org, Actor(api_key_id=dev_key.pk))
    other_tenant = _job(globex.org, Actor(api_key_id=globex_key.pk))
    keyless_user = _job(acme.org, Actor(api_key_id=nobodys_key.pk))
    signed_in = _job(acme.org, Actor(user_id=admin.pk))
    already = _job(acme.org, Actor(api_key_id=dev_key.pk, user_id=admin.pk))
    assert old.created_by_id is None and other_tenant.created_by_id is None

    _run_forwards()
    _run_forwards()  # running it again changes nothing

    def user_of(job: TrainingJob) -> int | None:
        return TrainingJob.objects.for_tenant(job.organization_id).get(pk=job.pk).created_by_id

    assert user_of(old) == developer.pk
    assert user_of(other_tenant) == globex.users["owner"].pk
    assert user_of(keyless_user) is None  # a key nobody issued names no user
    assert user_of(signed_in) == admin.pk
    assert user_of(already) == admin.pk  # a user already recorded is not overwritten


def test_backfill_is_reversible_as_a_no_op():
    migration = importlib.import_module(f"saas.jobs.migrations.{NAME}")
    (operation,) = migration.Migration.operations
    assert isinstance(operation, RunPython) and operation.reversible
    assert operation.reverse_code is RunPython.noop
