"""Tenant isolation, proven by walking every /v1 route as another tenant.

Organisation A owns one of everything (dataset, job, model, API key, member, invitation).
Organisation B calls every route in the URL conf, with every HTTP method the view has, as a
signed-in user of every role and as API keys with every single scope and with all scopes,
putting A's ids in the path, the query string and the body. Every answer must be a 403 (the
role table refuses) or a 404 / 400 / empty list (A's objects do not exist for B), never one of
A's ids in a response body, and A's rows must be exactly as they were.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, get_resolver

from saas.apikeys.models import SCOPES, ApiKey
from saas.billing.models import Invoice
from saas.jobs.models import TrainingJob
from saas.registry.models import TrainedModel
from saas.tenancy.models import AuditEvent, Invitation, Membership
from saas.tenancy.permissions import ROLE_ACTIONS
from tests.conftest import ROLES, set_plan_limits, small_text_rows, text_csv, upload

pytestmark = pytest.mark.django_db
PUBLIC = {"/v1/openapi.json", "/v1/docs"}
METHODS = ("get", "post", "patch", "delete")


def v1_routes() -> list[tuple[str, object]]:
    """(path template like /v1/models/<str:model_id>, view class) for every /v1 route."""
    out = []
    for top in get_resolver().url_patterns:
        if str(top.pattern) != "v1/":
            continue
        for p in top.url_patterns:
            assert isinstance(p, URLPattern)
            out.append(("/v1/" + str(p.pattern), p.callback.view_class))
    return out


def snapshot(org) -> dict:
    return {
        "datasets": list(
            org.org
            and __import__("saas.datasets.models", fromlist=["Dataset"])
            .Dataset.objects.for_tenant(org.org)
            .values_list("id", "status")
        ),
        "jobs": list(
            TrainingJob.objects.for_tenant(org.org).values_list(
                "id", "status", "cancel_requested_at"
            )
        ),
        "models": list(TrainedModel.objects.for_tenant(org.org).values_list("id")),
        "keys": list(ApiKey.objects.for_tenant(org.org).values_list("id", "revoked_at")),
        "members": list(
            Membership.objects.filter(organization=org.org).values_list("id", "role").order_by("id")
        ),
        "invitations": list(
            Invitation.objects.for_tenant(org.org).values_list("id", "accepted_at")
        ),
        "invoices": list(Invoice.objects.for_tenant(org.org).values_list("id", "status", "total")),
        "audit": AuditEvent.objects.for_tenant(org.org).count(),
    }


def test_no_route_leaks_or_changes_another_tenants_data(
    acme, globex, settings, django_capture_on_commit_callbacks
):
    set_plan_limits(requests_per_key=10**6, requests_per_organization=10**6)
    # A's objects
    a = acme.key("owner")
    ds = upload(a, text_csv(small_text_rows())).json()
    job = a.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    job2 = a.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    TrainingJob.objects.for_tenant(acme.org).filter(pk=job2["id"]).update(status="succeeded")
    model = TrainedModel.objects.for_tenant(acme.org).create(
        organization=acme.org,
        job_id=job2["id"],
        task="text-classification",
        base_model="x",
        classes=["a", "b"],
        metrics={},
        artifact_key="k",
        artifact_bytes=0,
        artifact_sha256="0" * 64,
    )
    import datetime

    from saas.billing.services import period_close
    from saas.common.actor import Actor

    invoice = period_close(
        actor=Actor.system(), organization=acme.org, period_start=datetime.date(2026, 5, 1)
    )
    inv = (
        acme.session("owner")
        .post("/v1/invitations", {"email": "inv@x.test", "role": "viewer"}, format="json")
        .json()
    )
    a_ids = {
        "dataset_id": ds["id"],
        "job_id": job["id"],
        "model_id": model.pk,
        "key_id": a.api_key.pk,
        "invoice_id": invoice.pk,
        "member_id": f"mem_{Membership.objects.get(organization=acme.org, user=acme.users['viewer']).pk}",
    }
    secret_values = set(a_ids.values()) | {inv["id"], job2["id"], invoice.number}
    before = snapshot(acme)

    principals = {f"session:{r}": globex.session(r) for r in ROLES}
    principals |= {f"key:{s}": globex.key("owner", scopes=[s]) for s in SCOPES}
    principals["key:all"] = globex.key("owner")
    principals |= {f"key-by:{r}": globex.key(r) for r in ROLES}
    bodies = {
        "dataset": ds["id"],
        "model": model.pk,
        "inputs": ["x"],
        "role": "viewer",
        "name": "n",
        "email": "e@x.test",
        "token": "nope",
    }
    query = "?" + "&".join(
        f"{k}={v}"
        for k, v in {
            "dataset": ds["id"],
            "model": model.pk,
            "job": job["id"],
            "cursor": "",
            "status": "queued",
        }.items()
    )

    attempts = 0
    for template, view in v1_routes():
        if template in PUBLIC:
            continue
        params = re.findall(r"<str:(\w+)>", template)
        path = re.sub(r"<str:(\w+)>", lambda m: a_ids[m.group(1)], template)
        for method in METHODS:
            if not hasattr(view, method):
                continue
            for name, client in principals.items():
                with django_capture_on_commit_callbacks(execute=False):
                    r = getattr(client, method)(path + query, bodies, format="json")
                attempts += 1
                where = f"{method.upper()} {path} as {name}"
                assert r.status_code < 500, (where, r.content)
                assert r.status_code not in (200, 201, 204) or not params, (where, r.status_code)
                text = r.content.decode(errors="replace")
                leaked = [v for v in secret_values if v in text and v not in (path + query)]
                # an echo of the id we sent in a 404/400 detail is fine; A's data in a body is not
                if r.status_code in (200, 201):
                    assert not [v for v in secret_values if v in text], (where, text[:500])
                else:
                    assert not leaked, (where, text[:500])
                if params and r.status_code not in (403, 404):
                    pytest.fail(f"{where}: {r.status_code} {text[:300]}")
    assert snapshot(acme) == before
    assert attempts > 250
    print(f"\ncross-tenant attempts: {attempts}")


def test_role_table_covers_every_role():
    assert set(ROLE_ACTIONS) == set(ROLES)
