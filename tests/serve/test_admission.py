"""Admission on the data plane: input-weighted rate limits (429), the hard quota (402), spend
caps (402), all in one Redis call with reservations, so concurrent requests at a quota's edge
never overshoot it; and a request that fails after admission bills nothing."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.utils import timezone

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_create, api_key_spend_cap_set
from saas.billing.models import BillingAccount, Plan, PlanPrice
from saas.common.actor import Actor
from saas.metering.services import usage_record
from tests.conftest import set_plan_limits
from tests.serve.conftest import serve_app
from tests.serve.test_predict import assert_problem, bearer, ledger, wait_ledger

pytestmark = pytest.mark.tf


def predict(client, model_id: str, key: str, n: int = 1):
    return client.post(
        f"/v1/models/{model_id}/predict",
        json={"inputs": [f"great film {i}" for i in range(n)]},
        headers=bearer(key),
    )


def free_quota(included: int) -> None:
    """The free plan (hard limits) includes ``included`` predictions a month."""
    assert Plan.objects.get(code="free").hard_limits
    PlanPrice.objects.filter(plan__code="free", meter="predictions").update(included_units=included)


def assert_nothing_billed_later(org, expected: int) -> None:
    """The ledger reaches ``expected`` and, two windows later, is still ``expected``."""
    assert wait_ledger(org, expected) == expected
    time.sleep(2.5)
    assert ledger(org) == expected


# --- rate limits -------------------------------------------------------------------------


def test_the_rate_limit_counts_inputs_not_requests(serve_client, tenant, text_model):
    set_plan_limits("free", predictions_per_key=5)
    ok = predict(serve_client, text_model, tenant.key, n=3)
    assert ok.status_code == 200, ok.text
    assert ok.headers["RateLimit-Limit"] == "5" and ok.headers["RateLimit-Remaining"] == "2"
    r = predict(serve_client, text_model, tenant.key, n=3)
    problem = assert_problem(r, 429)
    assert problem["type"].endswith("/rate-limited") and "5 inputs per 60 s" in problem["detail"]
    assert int(r.headers["Retry-After"]) >= 1
    assert r.headers["RateLimit-Limit"] == "5"
    assert r.headers["RateLimit-Remaining"] == "2"
    assert int(r.headers["RateLimit-Reset"]) == int(r.headers["Retry-After"])
    # Two inputs still fit: the refused request took no tokens.
    assert predict(serve_client, text_model, tenant.key, n=2).status_code == 200
    assert predict(serve_client, text_model, tenant.key, n=1).status_code == 429
    assert_nothing_billed_later(tenant.org, 5)


def test_a_request_larger_than_the_bucket_is_admitted_when_it_is_full(
    serve_client, tenant, text_model
):
    """Big requests are not starved: 8 inputs against a bucket of 5 pass when it is full and
    leave it in debt, so the next input waits."""
    set_plan_limits("free", predictions_per_key=5)
    assert predict(serve_client, text_model, tenant.key, n=8).status_code == 200
    r = predict(serve_client, text_model, tenant.key, n=1)
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 36  # 3 in debt + 1, at 5 per 60 s
    assert_nothing_billed_later(tenant.org, 8)


def test_the_organisations_rate_limit_spans_its_keys(serve_client, tenant, text_model):
    set_plan_limits("free", predictions_per_key=100, predictions_per_organization=4)
    second = api_key_create(organization=tenant.org, name="second", actor=Actor.system()).secret
    assert predict(serve_client, text_model, tenant.key, n=3).status_code == 200
    r = predict(serve_client, text_model, second, n=2)
    assert_problem(r, 429)
    assert r.headers["RateLimit-Limit"] == "4"
    assert predict(serve_client, text_model, second, n=1).status_code == 200
    assert_nothing_billed_later(tenant.org, 4)


# --- the hard quota ----------------------------------------------------------------------


def test_the_hard_quota_is_402_naming_the_meter(serve_client, tenant, text_model):
    free_quota(40)
    usage_record(  # 30 already in this month's ledger: 10 left
        organization_id=tenant.org.pk,
        meter="predictions",
        quantity=30,
        occurred_at=timezone.now(),
        source_type="test",
        source_id="earlier",
    )
    problem = assert_problem(predict(serve_client, text_model, tenant.key, n=11), 402)
    assert problem["type"].endswith("/payment-required")
    assert "includes 40 predictions a month; 30 are used" in problem["detail"]
    assert problem["meter"] == "predictions" and problem["limit"] == "40"
    assert problem["used"] == "30" and problem["resets_on"].endswith("-01")
    assert predict(serve_client, text_model, tenant.key, n=10).status_code == 200
    problem = assert_problem(predict(serve_client, text_model, tenant.key, n=1), 402)
    assert problem["used"] == "40"
    assert_nothing_billed_later(tenant.org, 40)


def test_32_concurrent_requests_at_the_quotas_edge_never_overshoot(
    serve_client, tenant, text_model
):
    """The quota leaves 40 inputs; 32 requests of 2 arrive at once: exactly 20 are admitted,
    12 refused with 402, and the ledger holds exactly 40."""
    free_quota(42)
    # Warm (key cached, model loaded, budget read), using 2: 40 left.
    assert predict(serve_client, text_model, tenant.key, n=2).status_code == 200
    barrier = threading.Barrier(32)

    def one(_i: int) -> int:
        barrier.wait()
        return predict(serve_client, text_model, tenant.key, n=2).status_code

    with ThreadPoolExecutor(32) as pool:
        statuses = list(pool.map(one, range(32)))
    assert statuses.count(200) == 20, statuses
    assert statuses.count(402) == 12, statuses
    assert_nothing_billed_later(tenant.org, 42)


# --- spend caps --------------------------------------------------------------------------


def test_the_organisations_spend_cap_is_402(serve_client, tenant, text_model):
    BillingAccount.objects.for_tenant(tenant.org).update(monthly_spend_cap=Decimal("0"))
    problem = assert_problem(predict(serve_client, text_model, tenant.key), 402)
    assert "organisation's monthly spend cap" in problem["detail"]
    assert problem["limit"] == "0.00" and problem["remaining"] == "0"
    assert_nothing_billed_later(tenant.org, 0)


def test_the_keys_spend_cap_admits_up_to_it_then_402(serve_client, tenant, text_model):
    """On Pro a prediction costs 0.0005 and a key's usage counts at unit price: a cap of
    0.01 is 20 predictions."""
    BillingAccount.objects.for_tenant(tenant.org).update(plan=Plan.objects.get(code="pro"))
    key = ApiKey.objects.for_tenant(tenant.org).get()
    api_key_spend_cap_set(api_key=key, monthly_spend_cap=Decimal("0.01"), actor=Actor.system())
    other = api_key_create(organization=tenant.org, name="uncapped", actor=Actor.system()).secret
    assert_problem(predict(serve_client, text_model, tenant.key, n=21), 402)
    assert predict(serve_client, text_model, tenant.key, n=12).status_code == 200
    assert predict(serve_client, text_model, tenant.key, n=8).status_code == 200
    problem = assert_problem(predict(serve_client, text_model, tenant.key), 402)
    assert "API key's monthly spend cap" in problem["detail"] and problem["limit"] == "0.01"
    assert predict(serve_client, text_model, other, n=5).status_code == 200  # only that key
    assert_nothing_billed_later(tenant.org, 25)


# --- failed requests ---------------------------------------------------------------------


def _month_counters(r) -> dict[bytes, int]:
    return {k: int(r.get(k)) for k in r.scan_iter("dp:q:*")}


def test_a_request_past_its_deadline_is_504_billed_nothing_and_released(
    transactional_db, clean_redis, tenant, text_model
):
    with serve_app(deadline_s=0.001) as c:
        r = predict(c, text_model, tenant.key, n=3)
        problem = assert_problem(r, 504)
        assert (
            problem["type"].endswith("/deadline-exceeded")
            and "nothing was billed" in (problem["detail"])
        )
        counters = _month_counters(clean_redis)
        assert counters and set(counters.values()) == {0}, counters  # reservations released
    assert_nothing_billed_later(tenant.org, 0)


def test_a_refused_or_failed_request_frees_its_quota_for_others(
    transactional_db, clean_redis, tenant, text_model
):
    """With 3 left on the quota, a request that timed out does not keep its reservation: the
    3 are still there for the next request."""
    free_quota(3)
    with serve_app(deadline_s=0.001) as c:
        assert predict(c, text_model, tenant.key, n=3).status_code == 504
    with serve_app() as c:  # open while the ledger is checked: its flusher writes it
        assert predict(c, text_model, tenant.key, n=3).status_code == 200
        assert predict(c, text_model, tenant.key, n=1).status_code == 402
        assert_nothing_billed_later(tenant.org, 3)
