"""/metrics: django-prometheus' families and Trainyard's scrape-time figures."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_metrics_has_request_and_job_families(client):
    client.get("/health/live")
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_total_by_view_transport_method_total" in text
    assert 'trainyard_jobs{device="cpu",queue="training-cpu",status="queued"}' in text
    assert "trainyard_job_queue_wait_seconds_count" in text
    assert "trainyard_predictions_total" in text
    assert "django_db_execute_total" in text


def test_metrics_refuses_remote_clients_without_token(client, settings):
    settings.TRAINYARD_METRICS_TOKEN = "tok-123"
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/metrics", **remote).status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **remote).status_code == 404
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer tok-123", **remote)
    assert ok.status_code == 200
    settings.TRAINYARD_METRICS_PUBLIC = True
    assert client.get("/metrics", **remote).status_code == 200
