"""The /v1 layout (DESIGN §2): every route is served by its resource's module under
``saas/api/v1/``, and the OpenAPI document keeps its paths and component names.

Component names come from serializer class names, so renaming a serializer while moving it
would silently change the published schema; the explicit lists below make that a failing test.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

# Served by drf-spectacular itself, not by a resource module.
SCHEMA_ROUTES = {"openapi.json", "docs"}

PATHS = {
    "/v1/api-keys",
    "/v1/api-keys/{key_id}",
    "/v1/api-keys/{key_id}/revoke",
    "/v1/audit-events",
    "/v1/billing",
    "/v1/billing/checkout",
    "/v1/billing/portal",
    "/v1/datasets",
    "/v1/datasets/{dataset_id}",
    "/v1/invitations",
    "/v1/invitations/accept",
    "/v1/invoices",
    "/v1/invoices/{invoice_id}",
    "/v1/invoices/{invoice_id}/html",
    "/v1/invoices/{invoice_id}/pdf",
    "/v1/invoices/{invoice_id}/send",
    "/v1/members",
    "/v1/members/{member_id}",
    "/v1/models",
    "/v1/models/{model_id}",
    "/v1/models/{model_id}/download",
    "/v1/models/{model_id}/predict",
    "/v1/training-jobs",
    "/v1/training-jobs/{job_id}",
    "/v1/training-jobs/{job_id}/cancel",
    "/v1/training-jobs/{job_id}/confusion-matrix",
    "/v1/training-jobs/{job_id}/events",
    "/v1/training-jobs/{job_id}/misclassified",
    "/v1/usage",
}

COMPONENTS = {
    "ApiKeyCreateIn",
    "PatchedApiKeyUpdateIn",
    "ApiKeyList",
    "ApiKeyOut",
    "AuditEventList",
    "AuditEventOut",
    "CheckoutIn",
    "DatasetCreateIn",
    "DatasetList",
    "DatasetOut",
    "DeviceEnum",
    "HyperparametersIn",
    "InvitationAcceptIn",
    "InvitationIn",
    "InvitationList",
    "InvitationOut",
    "InvoiceDetailOut",
    "InvoiceList",
    "InvoiceOut",
    "InvoiceSendIn",
    "JobEventList",
    "JobEventOut",
    "LrScheduleEnum",
    "MemberList",
    "MemberOut",
    "MisclassifiedList",
    "MisclassifiedOut",
    "ModelList",
    "ModelOut",
    "ModelListOut",
    "PatchedBillingPatchIn",
    "PatchedMemberRoleIn",
    "PredictIn",
    "PredictOut",
    "PredictionOut",
    "RoleEnum",
    "ScopesEnum",
    "TaskEnum",
    "TrainingJobCreateIn",
    "TrainingJobList",
    "TrainingJobOut",
    "TrainingJobDetailOut",
    "ConfusionMatrixOut",
}


def _v1_routes() -> list[tuple[str, type]]:
    """(route below /v1/, view class) for every route the URLconf serves under /v1/."""
    (v1,) = [
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and str(p.pattern) == "v1/"
    ]
    routes = []
    for p in v1.url_patterns:
        assert isinstance(p, URLPattern), f"unexpected nested include under /v1/: {p}"
        routes.append((str(p.pattern), p.callback.view_class))  # type: ignore[attr-defined]
    return routes


def test_every_v1_route_is_served_by_its_resource_module():
    routes = _v1_routes()
    resource_routes = [(r, view) for r, view in routes if r not in SCHEMA_ROUTES]
    assert {r for r, _ in routes} - {r for r, _ in resource_routes} == SCHEMA_ROUTES
    assert len(resource_routes) == len(PATHS)
    for route, view in resource_routes:
        module = "saas.api.v1." + route.split("/")[0].replace("-", "_")
        assert view.__module__ == module, f"/v1/{route} is served from {view.__module__}"


def test_the_openapi_document_keeps_its_paths_and_component_names(client):
    r = client.get("/v1/openapi.json")
    assert r.status_code == 200, r.content
    doc = r.json()
    assert set(doc["paths"]) == PATHS
    assert set(doc["components"]["schemas"]) == COMPONENTS
