"""``actor`` is a required keyword of every write service a principal calls in datasets, jobs,
registry, metering and billing (DESIGN §2: ``actor`` on every write), and of
``billing_check``, which finds the calling key's spend cap from ``actor.api_key_id``.

Not listed, by design: the worker-side job transitions (start, monitor, complete, stopped,
fail, reaper), ``usage_record`` / the artifact helpers and billing's ``training_charge`` and
``storage_sample``, which run inside a transition or a sample the system makes and whose actor
is always the system; the Stripe webhook's ``stripe_event_process``, whose actor is Stripe;
and ``prediction_windows_flush``, which writes what the data plane (``serve``) already
admitted for its principals (the principal is on each event).
"""

from __future__ import annotations

import inspect

import pytest

from saas.billing import services as billing
from saas.datasets import services as datasets
from saas.jobs import services as jobs
from saas.metering import services as metering
from saas.registry import services as registry

WRITES = [
    datasets.dataset_create,
    datasets.dataset_delete,
    jobs.training_job_create,
    jobs.training_job_cancel,
    jobs.training_job_retry,
    registry.model_download,
    metering.usage_correct,
    billing.billing_account_ensure,
    billing.billing_account_update,
    billing.billing_plan_change,
    billing.checkout_url,
    billing.billing_check,
    billing.billing_credit_grant,
    billing.quota_reserve,
    billing.billing_enforce_grace,
    billing.invoice_send,
    billing.period_close,
    billing.period_close_all,
    billing.period_close_previous_month,
    billing.usage_warnings_send,
    billing.usage_warnings_send_all,
]


@pytest.mark.parametrize("service", WRITES, ids=lambda f: f.__name__)
def test_actor_is_a_required_keyword(service):
    actor = inspect.signature(service).parameters["actor"]
    assert actor.kind is inspect.Parameter.KEYWORD_ONLY
    assert actor.default is inspect.Parameter.empty


@pytest.mark.parametrize("service", WRITES, ids=lambda f: f.__name__)
def test_no_write_service_takes_an_api_key_instead(service):
    assert "api_key" not in inspect.signature(service).parameters
