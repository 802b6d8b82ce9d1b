"""POST /v1/models/{id}/predict on the data plane: the contract, auth, isolation, metering."""

from __future__ import annotations

import time

import pytest

from saas.metering.models import UsageEvent

pytestmark = pytest.mark.tf


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_ledger(org, expected: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        total = sum(
            int(e.quantity) for e in UsageEvent.objects.for_tenant(org).filter(meter="predictions")
        )
        if total >= expected:
            return total
        time.sleep(0.2)
    return total


def test_text_prediction_contract(serve_client, tenant, text_model):
    r = serve_client.post(
        f"/v1/models/{text_model}/predict",
        json={"inputs": ["great film, loved it", "awful, boring"]},
        headers=bearer(tenant.key),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "prediction" and body["model"] == text_model
    assert body["id"].startswith("pred_")
    assert len(body["predictions"]) == 2
    for p in body["predictions"]:
        assert p["label"] in {"negative", "positive"}
        assert set(p["scores"]) == {"negative", "positive"}
        assert abs(sum(p["scores"].values()) - 1) < 1e-4
        assert p["score"] == max(p["scores"].values())
    assert body["usage"]["predictions"] == 2
    assert body["usage"]["cold_start"] is True
    assert int(r.headers["RateLimit-Limit"]) > 0
    r2 = serve_client.post(
        f"/v1/models/{text_model}/predict", json={"inputs": ["ok"]}, headers=bearer(tenant.key)
    )
    assert r2.json()["usage"]["cold_start"] is False
    assert wait_ledger(tenant.org, 3) == 3
