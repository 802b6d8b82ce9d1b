"""``actor`` is a required keyword of every write service a principal calls in datasets, jobs,
registry, inference and metering (DESIGN §2: ``actor`` on every write).

Not listed, by design: the worker-side job transitions (start, monitor, complete, stopped,
fail, reaper) and ``usage_record`` / the artifact helpers, which run inside a transition the
system makes and whose actor is always the system.
"""

from __future__ import annotations

import inspect

import pytest

from saas.datasets import services as datasets
from saas.inference import services as inference
from saas.jobs import services as jobs
from saas.metering import services as metering
from saas.registry import services as registry

WRITES = [
    datasets.dataset_create,
    datasets.dataset_delete,
    jobs.training_job_create,
    jobs.training_job_cancel,
    registry.model_download,
    inference.prediction_create,
    metering.usage_correct,
]


@pytest.mark.parametrize("service", WRITES, ids=lambda f: f.__name__)
def test_actor_is_a_required_keyword(service):
    actor = inspect.signature(service).parameters["actor"]
    assert actor.kind is inspect.Parameter.KEYWORD_ONLY
    assert actor.default is inspect.Parameter.empty


@pytest.mark.parametrize("service", WRITES, ids=lambda f: f.__name__)
def test_no_write_service_takes_an_api_key_instead(service):
    assert "api_key" not in inspect.signature(service).parameters
