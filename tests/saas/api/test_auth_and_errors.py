"""API keys at the door, problem+json everywhere, the schema, and predict without serve."""

import base64
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from saas.apikeys.models import ApiKey
from saas.apikeys.services import api_key_create
from saas.common.actor import Actor
from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from tests.conftest import make_tenant, png_bytes, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db


def bearer(key: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return c


def test_key_format_and_storage(tenant):
    assert tenant.key.startswith("ty_live_")
    public_id, secret = tenant.key[len("ty_live_") :].split("_", 1)
    assert len(public_id) == 12 and len(secret) >= 43
    key = ApiKey.objects.for_tenant(tenant.org).get()
    assert tenant.key not in (key.secret_sha256, key.public_id) and len(key.secret_sha256) == 64


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer nope",
        "Bearer ty_live_short_x",
        "Bearer ty_live_abcdefghijkl_wrongsecret",
    ],
)
def test_bad_credentials_are_401_with_www_authenticate(db, header):
    c = APIClient()
    if header:
        c.credentials(HTTP_AUTHORIZATION=header)
    r = c.get("/v1/datasets")
    assert r.status_code == 401, r.content
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert r["Content-Type"].startswith("application/problem+json")


def test_revoked_and_expired_keys(tenant):
    key = ApiKey.objects.for_tenant(tenant.org).get()
    assert tenant.client.get("/v1/datasets").status_code == 200
    ApiKey.objects.for_tenant(tenant.org).filter(pk=key.pk).update(revoked_at=timezone.now())
    r = tenant.client.get("/v1/datasets")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    issued = api_key_create(organization=tenant.org, actor=Actor.system())
    # Created live (an expiry in the past is refused at creation), then its time runs out.
    ApiKey.objects.for_tenant(tenant.org).filter(pk=issued.api_key.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    r = bearer(issued.secret).get("/v1/datasets")
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_last_used_is_written_at_most_once_a_minute(tenant):
    tenant.client.get("/v1/datasets")
    first = ApiKey.objects.for_tenant(tenant.org).get().last_used_at
    assert first is not None
    tenant.client.get("/v1/datasets")
    assert ApiKey.objects.for_tenant(tenant.org).get().last_used_at == first


def test_missing_scope_is_403_naming_it(db):
    t = make_tenant("readonly", scopes=["datasets:read"])
    assert t.client.get("/v1/datasets").status_code == 200
    r = upload(t.client, text_csv(small_text_rows()))
    assert r.status_code == 403 and "datasets:write" in r.json()["detail"]


def test_unknown_route_and_method_are_problems(tenant):
    r = tenant.client.get("/v1/nope")
    assert r.status_code == 404 and r["Content-Type"].startswith("application/problem+json")
    r = tenant.client.put("/v1/datasets")
    assert r.status_code == 405 and r.json()["status"] == 405


def test_openapi_schema_is_served(db):
    r = APIClient().get("/v1/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/v1/datasets", "/v1/training-jobs/{job_id}/cancel", "/v1/models/{model_id}/predict"):
        assert p in paths


def make_model(tenant, task: str = "text-classification") -> TrainedModel:
    """A model row as a finished job leaves it (no artifact: these tests never reach a model)."""
    ds = upload(tenant.client, text_csv(small_text_rows())).json()
    job = tenant.client.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    TrainingJob.objects.for_tenant(tenant.org).filter(pk=job["id"]).update(status="succeeded")
    return TrainedModel.objects.for_tenant(tenant.org).create(
        organization=tenant.org,
        job_id=job["id"],
        task=task,
        base_model="x",
        classes=["a", "b"],
        metrics={},
        artifact_key="missing",
        artifact_bytes=0,
        artifact_sha256="0" * 64,
    )


def test_predict_without_the_data_plane_is_a_503_problem_and_bills_nothing(tenant):
    # The web tier forwards predictions to serve (tests/saas/api/v1/test_models_predict.py
    # with a real one); nothing listens at TRAINYARD_SERVE_URL here (tests/conftest.py).
    model = make_model(tenant, "image-classification")
    img = base64.b64encode(png_bytes()).decode()
    r = tenant.client.post(
        f"/v1/models/{model.pk}/predict", {"inputs": [{"image_base64": img}]}, format="json"
    )
    assert r.status_code == 503 and r["Content-Type"].startswith("application/problem+json")
    assert r.json()["title"] == "The data plane is unavailable" and r["Retry-After"]
    assert not UsageEvent.objects.for_tenant(tenant.org).filter(meter="predictions").exists()


def test_models_are_tenant_scoped(tenant, other_tenant):
    model = make_model(tenant)
    for method, path in (
        ("get", f"/v1/models/{model.pk}"),
        ("get", f"/v1/models/{model.pk}/download"),
        ("post", f"/v1/models/{model.pk}/predict"),
    ):
        r = (
            getattr(other_tenant.client, method)(path, {"inputs": ["x"]}, format="json")
            if method == "post"
            else other_tenant.client.get(path)
        )
        assert r.status_code == 404, path
    assert other_tenant.client.get("/v1/models").json()["data"] == []
    assert [m["id"] for m in tenant.client.get("/v1/models").json()["data"]] == [model.pk]


def test_api_docs_page_and_its_assets_are_served(db):
    c = APIClient()
    page = c.get("/v1/docs")
    assert page.status_code == 200 and b"swagger-ui" in page.content
    asset = c.get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")
    assert asset.status_code == 200
    schema = c.get("/v1/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    listed = schema["paths"]["/v1/datasets"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"limit", "cursor"}


@pytest.mark.parametrize("delta", [timedelta(seconds=-1), timedelta(days=-400), timedelta(0)])
def test_creating_a_key_that_is_already_expired_is_400(acme, delta):
    from saas.tenancy.models import AuditEvent

    c = acme.session("developer")
    expires = (timezone.now() + delta).isoformat()
    r = c.post("/v1/api-keys", {"name": "late", "expires_at": expires}, format="json")
    assert r.status_code == 400, r.content
    assert r["Content-Type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["expires_at"]
    assert not ApiKey.objects.for_tenant(acme.org).filter(name="late").exists()
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="api_key.created").exists()


def test_creating_a_key_with_a_future_expiry_works(acme):
    expires = (timezone.now() + timedelta(days=1)).isoformat()
    r = acme.session("developer").post(
        "/v1/api-keys", {"name": "soon", "expires_at": expires}, format="json"
    )
    assert r.status_code == 201, r.content
    assert bearer(r.json()["secret"]).get("/v1/datasets").status_code == 200
