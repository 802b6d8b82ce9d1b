"""One organisation that owns one of everything, for the fuzz and corpus tests: the ids every
path parameter can take, and a client per principal (an all-scopes API key, a signed-in owner).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import URLPattern, get_resolver
from rest_framework.test import APIClient

from saas.apikeys.services import api_key_create
from saas.billing.services import period_close
from saas.common.actor import Actor
from saas.jobs.models import TrainingJob
from saas.registry.models import TrainedModel
from saas.tenancy.models import Membership
from tests.conftest import Org, set_plan_limits, small_text_rows, text_csv, upload


@dataclass
class World:
    org: Org
    key: str
    ids: dict[str, str] = field(default_factory=dict)

    def key_client(self) -> Client:
        """A raw Django client sending the all-scopes key (raw, so paths and bodies go as given)."""
        return Client(HTTP_AUTHORIZATION=f"Bearer {self.key}")

    def session_client(self) -> Client:
        c = Client()
        c.force_login(self.org.users["owner"])
        return c


def build_world(slug: str = "fuzz") -> World:
    """An organisation with a dataset, a queued and a succeeded job, a model, an invoice, an
    invitation and members of every role; limits raised so no fuzz run hits a rate limit."""
    set_plan_limits(
        requests_per_key=10**7,
        requests_per_organization=10**7,
        max_active_jobs=10**6,
        predictions_per_key=10**7,
        predictions_per_organization=10**7,
    )
    org = Org(slug)
    issued = api_key_create(
        organization=org.org, name="fuzz", created_by=org.users["owner"], actor=Actor.system()
    )
    secret = issued.secret
    # The key routes act on another key: revoking the one the fuzz sends would end the run.
    spare = api_key_create(
        organization=org.org, name="spare", created_by=org.users["owner"], actor=Actor.system()
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    ds = upload(api, text_csv(small_text_rows())).json()
    job = api.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    done = api.post("/v1/training-jobs", {"dataset": ds["id"]}, format="json").json()
    TrainingJob.objects.for_tenant(org.org).filter(pk=done["id"]).update(status="succeeded")
    model = TrainedModel.objects.for_tenant(org.org).create(
        organization=org.org,
        job_id=done["id"],
        task="text-classification",
        base_model="text-embedding-bag",
        classes=["negative", "positive"],
        metrics={},
        artifact_key=default_storage.save(
            f"tenants/{org.org.pk}/fuzz/model.tar.gz", ContentFile(b"x")
        ),
        artifact_bytes=1,
        artifact_sha256="0" * 64,
    )
    invoice = period_close(
        actor=Actor.system(), organization=org.org, period_start=datetime.date(2026, 5, 1)
    )
    inv = org.session("owner").post(
        "/v1/invitations", {"email": "inv@x.test", "role": "viewer"}, format="json"
    )
    viewer = Membership.objects.get(organization=org.org, user=org.users["viewer"])
    ids = {
        "dataset_id": ds["id"],
        "job_id": job["id"],
        "model_id": model.pk,
        "key_id": spare.api_key.pk,
        "invoice_id": invoice.pk,
        "member_id": f"mem_{viewer.pk}",
        "invitation_id": inv.json()["id"],
    }
    return World(org=org, key=secret, ids=ids)


def v1_routes() -> list[tuple[str, list[str], list[str]]]:
    """(path template with ``{name}`` parameters, parameter names, allowed methods) for every
    /v1 route in the URL conf."""
    out = []
    for top in get_resolver().url_patterns:
        if str(top.pattern) != "v1/":
            continue
        for p in top.url_patterns:
            assert isinstance(p, URLPattern)
            view = p.callback.view_class
            template = "/v1/" + str(p.pattern)
            names = list(p.pattern.converters)
            for n in names:
                template = template.replace(f"<str:{n}>", "{" + n + "}")
            methods = [m for m in ("get", "post", "patch", "put", "delete") if hasattr(view, m)]
            out.append((template, names, methods))
    return out
