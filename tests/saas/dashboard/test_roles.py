"""Every page for every role, and tenant isolation across the pages: what a role may read,
the write controls a viewer never sees (and the 403 on posting anyway), another organisation's
pages answering 404 without rendering its ids.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import pytest

from saas.apikeys.models import ApiKey
from saas.jobs.models import TrainingJob
from saas.tenancy.models import Membership
from tests.conftest import ROLES, Org

from .conftest import Workspace, browser, html


def pages(ws: Workspace) -> dict[str, str]:
    return {
        "home": "/app/",
        "datasets": "/app/datasets",
        "dataset": f"/app/datasets/{ws.dataset_id}",
        "dataset_new": "/app/datasets/new",
        "jobs": "/app/training",
        "job_new": f"/app/training/new?dataset={ws.dataset_id}",
        "job": f"/app/training/{ws.job.pk}",
        "models": "/app/models",
        "model": f"/app/models/{ws.model.pk}",
        "keys": "/app/api-keys",
        "members": "/app/members",
        "billing": "/app/billing",
    }


ALL_PAGES = {"home", "datasets", "dataset", "dataset_new", "jobs", "job_new", "job", "models"}
ALL_PAGES |= {"model", "keys", "members", "billing"}


READABLE = {
    "owner": ALL_PAGES,
    "admin": ALL_PAGES,
    "developer": ALL_PAGES - {"billing"},
    "viewer": {"home", "datasets", "dataset", "jobs", "job", "models", "model", "members"},
    "billing": {"home", "members", "billing"},
}


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_its_pages_and_gets_403_elsewhere(workspace, role):
    c = workspace.client(role)
    for name, url in pages(workspace).items():
        r = c.get(url)
        expected = 200 if name in READABLE[role] else 403
        assert r.status_code == expected, (role, name, r.status_code)
        assert r["Content-Type"].startswith("text/html")
        if expected == 403:
            assert "does not allow" in html(r)


def test_viewer_sees_no_write_controls_and_writes_are_403(workspace):
    ws = workspace
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=ws.job.pk).update(status="running")
    viewer = ws.client("viewer")
    for url, absent in [
        ("/app/datasets", "Upload a dataset"),
        (f"/app/datasets/{ws.dataset_id}", "Delete this dataset"),
        (f"/app/datasets/{ws.dataset_id}", "Train a model on it"),
        (f"/app/training/{ws.job.pk}", "Cancel job"),
        ("/app/training", "New training job"),
        (f"/app/models/{ws.model.pk}", "Predict</button>"),
        ("/app/members", "Send invitation"),
        ("/app/members", "Remove…"),
        ("/app/", 'href="/app/api-keys"'),
    ]:
        assert absent not in html(viewer.get(url)), (url, absent)
    owner_page = html(ws.client("owner").get(f"/app/training/{ws.job.pk}"))
    assert "Cancel job" in owner_page  # the control exists for those allowed
    for url, data in [
        (f"/app/training/{ws.job.pk}/cancel", {}),
        (f"/app/datasets/{ws.dataset_id}/delete", {}),
        ("/app/datasets/new", {}),
        ("/app/training/new", {"dataset": ws.dataset_id}),
        (f"/app/models/{ws.model.pk}/try", {"text": "hi"}),
        ("/app/api-keys", {"name": "x", "scopes": ["models:predict"]}),
        ("/app/members", {"email": "a@b.test", "role": "viewer"}),
        ("/app/billing", {"monthly_spend_cap": "5"}),
        ("/app/billing/checkout", {"plan": "pro"}),
    ]:
        r = viewer.post(url, data)
        assert r.status_code == 403, (url, r.status_code)
    assert TrainingJob.objects.for_tenant(ws.org.org).get().cancel_requested_at is None
    assert ApiKey.objects.for_tenant(ws.org.org).count() == 0


def test_another_organisations_pages_are_404_and_its_ids_never_rendered(workspace):
    ws = workspace
    globex = Org("globex")
    outsider = browser(globex.users["owner"])
    other_key = browser(ws.org.users["owner"])
    other_key.post("/app/api-keys", {"name": "k", "scopes": ["models:predict"]})
    key = ApiKey.objects.for_tenant(ws.org.org).get()
    member = Membership.objects.get(organization=ws.org.org, user=ws.org.users["viewer"])
    for method, url in [
        ("get", f"/app/datasets/{ws.dataset_id}"),
        ("get", f"/app/datasets/{ws.dataset_id}/thumbnails/0.png"),
        ("post", f"/app/datasets/{ws.dataset_id}/delete"),
        ("get", f"/app/training/{ws.job.pk}"),
        ("post", f"/app/training/{ws.job.pk}/cancel"),
        ("get", f"/app/models/{ws.model.pk}"),
        ("post", f"/app/models/{ws.model.pk}/try"),
        ("post", f"/app/api-keys/{key.pk}/revoke"),
        ("post", f"/app/members/mem_{member.pk}/role"),
        ("post", f"/app/members/mem_{member.pk}/remove"),
        ("get", f"/app/training/new?dataset={ws.dataset_id}"),
    ]:
        r = getattr(outsider, method)(url, {"role": "owner"} if "role" in url else {})
        body = html(r) if "image" not in r["Content-Type"] else ""
        if url.endswith("new?dataset=" + ws.dataset_id):
            assert r.status_code == 200 and ws.dataset_id not in body
            continue
        assert r.status_code == 404, (method, url, r.status_code)
        assert "Not found" in body
    for url in pages(ws).values():
        body = html(
            outsider.get(
                url.replace(ws.dataset_id, "x").replace(ws.job.pk, "x").replace(ws.model.pk, "x")
            )
        )
        for secret_id in (ws.dataset_id, ws.job.pk, ws.model.pk, key.pk, ws.org.org.pk):
            assert secret_id not in body
    assert ApiKey.objects.for_tenant(ws.org.org).get().revoked_at is None
    assert Membership.objects.get(pk=member.pk).role == "viewer"
