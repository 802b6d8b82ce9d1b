"""Dashboard pages through Django's test client on PostgreSQL and Redis: sign-up and sign-in,
every page for every role, form errors that keep the input, tenant isolation.

The browser flow (a real worker training and predicting) is in tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client

from saas.apikeys.models import ApiKey
from saas.billing.models import BillingAccount
from saas.billing.selectors import plan_limits_get
from saas.billing.services import billing_account_get
from saas.jobs.models import TrainingJob
from saas.tenancy.models import Membership, Organization
from tests.conftest import ROLES, Org, image_zip, png_bytes, small_text_rows, text_csv

from .conftest import Workspace, browser

PASSWORD = "correct-horse-battery-9"


def html(r) -> str:
    return r.content.decode()


# --- sign-up, sign-in, password reset -----------------------------------------------------------


def test_sign_up_creates_a_user_and_an_owned_org_on_the_free_plan(db):
    c = Client()
    r = c.post(
        "/signup",
        {"email": "Ada@Example.com", "password": PASSWORD, "organization": "Ada Robotics"},
    )
    assert r.status_code == 302 and r["Location"] == "/app/"
    user = get_user_model().objects.get(email__iexact="ada@example.com")
    m = Membership.objects.get(user=user)
    assert m.role == "owner" and m.organization.name == "Ada Robotics"
    assert plan_limits_get(organization=m.organization).plan == "free"
    assert billing_account_get(organization=m.organization).plan.code == "free"
    page = html(c.get("/app/"))
    assert "Ada Robotics" in page and "Getting started" in page


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "taken@x.test", "password": PASSWORD, "organization": "X"}, "email", "exists"),
        (
            {"email": "new@x.test", "password": "12345678", "organization": "X"},
            "password",
            "numeric",
        ),
        (
            {"email": "new@x.test", "password": "short", "organization": "X"},
            "password",
            "too short",
        ),
        (
            {"email": "not-an-email", "password": PASSWORD, "organization": "X"},
            "email",
            "valid email",
        ),
        (
            {"email": "new@x.test", "password": PASSWORD, "organization": "!!!"},
            "organization",
            "letter",
        ),
    ],
)
def test_sign_up_errors_keep_the_input(db, data, field, message):
    get_user_model().objects.create_user(username="taken@x.test", email="taken@x.test")
    r = Client().post("/signup", data)
    assert r.status_code == 200
    page = html(r)
    assert message in page.lower()
    assert f'id="id_{field}_error"' in page or "errorlist" in page
    assert f'value="{data["organization"]}"' in page  # kept
    assert Organization.objects.count() == 0


def test_log_in_by_email_in_any_case_and_log_out(db):
    get_user_model().objects.create_user(username="bo@x.test", email="bo@x.test", password=PASSWORD)
    c = Client()
    bad = c.post("/login", {"username": "bo@x.test", "password": "wrong"})
    assert bad.status_code == 200 and "do not match" in html(bad)
    assert 'value="bo@x.test"' in html(bad)
    assert c.post("/login", {"username": "BO@X.TEST", "password": PASSWORD}).status_code == 302
    assert c.get("/app/").status_code == 403  # signed in, but in no organisation
    assert c.post("/logout").status_code == 302
    assert c.get("/app/")["Location"].startswith("/login")


def test_password_reset_by_email_also_for_accounts_without_a_password(db):
    # Owners created by an operator or the API have no usable password: the link sets one.
    org = Org("acme")
    owner = org.users["owner"]
    assert not owner.has_usable_password()
    c = Client()
    r = c.post("/password-reset", {"email": owner.email.upper()})
    assert r.status_code == 302 and r["Location"] == "/password-reset/sent"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/password-reset/\S+)", mail.outbox[0].body).group(1)
    form = c.get(link, follow=True)
    assert "Choose a new password" in html(form)
    done = c.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert done.status_code == 302
    assert Client().login(username=owner.email, password=PASSWORD)
    # An unknown address gets the same answer and no email.
    assert c.post("/password-reset", {"email": "nobody@x.test"}).status_code == 302
    assert len(mail.outbox) == 1


def test_invitation_link_signs_up_into_the_inviting_org(acme, django_capture_on_commit_callbacks):
    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        r = owner.post("/app/members", {"email": "new@acme.test", "role": "developer"})
    assert r.status_code == 302
    link = re.search(r"http://localhost:8000(/invitations/accept\?token=\S+)", mail.outbox[-1].body)
    page = Client().get(link.group(1))
    assert "developer" in html(page) and "Create an account" in html(page)
    token = link.group(1).split("token=")[1]
    c = Client()
    form = c.get(f"/signup?invitation={token}")
    assert f"Join {acme.org.name}" in html(form)
    r = c.post(f"/signup?invitation={token}", {"email": "new@acme.test", "password": PASSWORD})
    assert r.status_code == 302
    user = get_user_model().objects.get(email="new@acme.test")
    assert list(Membership.objects.filter(user=user).values_list("organization_id", "role")) == [
        (acme.org.pk, "developer")
    ]
    assert Organization.objects.count() == 1  # no organisation of their own
    assert "Invitation not found" in html(Client().get(link.group(1)))  # used once


def test_signed_in_user_accepts_an_invitation(acme, globex, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        browser(acme.users["owner"]).post(
            "/app/members", {"email": globex.users["viewer"].email, "role": "developer"}
        )
    path = re.search(r"http://localhost:8000(/invitations/accept\?token=\S+)", mail.outbox[-1].body)
    c = browser(globex.users["viewer"])
    page = html(c.get(path.group(1)))
    assert "Accept and join" in page
    token = path.group(1).split("token=")[1]
    assert c.post("/invitations/accept", {"token": token}).status_code == 302
    assert (
        Membership.objects.get(organization=acme.org, user=globex.users["viewer"]).role
        == "developer"
    )
    assert acme.org.name in html(c.get("/app/"))  # the joined organisation is now current
    # Someone else signed in cannot use it (and it is used up anyway).
    other = browser(globex.users["owner"])
    assert other.post("/invitations/accept", {"token": token}).status_code == 404


def test_invitation_for_someone_else_is_refused(acme, django_capture_on_commit_callbacks):
    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/app/members", {"email": "new@acme.test", "role": "viewer"})
    token = re.search(r"token=(\S+)", mail.outbox[-1].body).group(1)
    r = Client().post(
        f"/signup?invitation={token}", {"email": "other@x.test", "password": PASSWORD}
    )
    assert r.status_code == 200 and "This invitation is for new@acme.test" in html(r)


# --- every page, every role ----------------------------------------------------------------------


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


def test_switching_organisation_changes_what_every_page_shows(workspace):
    ws = workspace
    globex = Org("globex")
    user = ws.org.users["developer"]
    Membership.objects.create(organization=globex.org, user=user, role="viewer")
    c = browser(user)
    assert ws.dataset_id in html(c.get("/app/datasets"))
    assert c.post("/app/organization", {"organization": globex.org.pk}).status_code == 302
    page = html(c.get("/app/datasets"))
    assert ws.dataset_id not in page and "globex (viewer)" in page
    assert c.get(f"/app/datasets/{ws.dataset_id}").status_code == 404
    # An organisation the user is not in cannot be chosen.
    third = Org("initech")
    assert c.post("/app/organization", {"organization": third.org.pk}).status_code == 404
    # The API follows the same current organisation.
    assert c.get("/v1/datasets", HTTP_ACCEPT="application/json").json()["data"] == []


# --- datasets ------------------------------------------------------------------------------------


def test_bad_csv_lists_the_problems_with_the_offending_rows_and_keeps_the_input(acme):
    c = browser(acme.users["developer"])
    data = b"text,label\nfine,a\nfine too,a\n,b\nlonely,c\nok,b\n"
    r = c.post(
        "/app/datasets/new",
        {"file": _file(data, "bad.csv"), "task": "text-classification", "name": "My reviews"},
    )
    assert r.status_code == 400
    page = html(r)
    assert "nothing was stored" in page
    assert "Row on line 4" in page and "<code>,b</code>" in page  # the offending row itself
    assert "c" in page and "at least 2" in page
    assert 'value="My reviews"' in page
    from saas.datasets.models import Dataset

    assert Dataset.objects.for_tenant(acme.org).count() == 0


def _file(data: bytes, name: str):
    import io

    f = io.BytesIO(data)
    f.name = name
    return f


@pytest.mark.parametrize(
    "post, message",
    [
        ({}, "This field is required"),
        ({"file": ("x.csv", b""), "task": "text-classification"}, "empty"),
        ({"file": ("x.csv", b"text,label\na,b\n"), "task": "sound"}, "valid choice"),
        ({"file": ("x.csv", b"a,b\n1,2\n3,4\n"), "task": "text-classification"}, "text"),
        ({"file": ("x.zip", b"not a zip"), "task": "image-classification"}, "ZIP"),
    ],
)
def test_upload_bad_input_is_a_4xx_page_with_a_plain_message(acme, post, message):
    c = browser(acme.users["owner"])
    data = {k: (_file(v[1], v[0]) if isinstance(v, tuple) else v) for k, v in post.items()}
    r = c.post("/app/datasets/new", data)
    assert 400 <= r.status_code < 500
    assert message.lower() in html(r).lower()


def test_upload_is_refused_over_the_size_limit(acme, settings):
    settings.TRAINYARD_MAX_UPLOAD_BYTES = 100
    c = browser(acme.users["owner"])
    r = c.post(
        "/app/datasets/new", {"file": _file(b"x" * 500, "x.csv"), "task": "text-classification"}
    )
    assert r.status_code == 400 and "the limit is 100 bytes" in html(r)


def test_htmx_upload_redirects_the_browser_to_the_dataset(acme):
    c = browser(acme.users["owner"])
    r = c.post(
        "/app/datasets/new",
        {"file": _file(text_csv(small_text_rows()), "r.csv"), "task": "text-classification"},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200 and r["HX-Redirect"].startswith("/app/datasets/ds_")


def test_image_dataset_page_has_a_thumbnail_grid(acme):
    from PIL import Image

    c = browser(acme.users["owner"])
    files = {
        f"{cls}/{i}.png": png_bytes(40 * i + 10 * j) for j, cls in enumerate("ab") for i in range(3)
    }
    r = c.post(
        "/app/datasets/new",
        {"file": _file(image_zip(files), "imgs.zip"), "task": "image-classification"},
    )
    assert r.status_code == 302
    page = html(c.get(r["Location"]))
    thumbs = re.findall(r'src="(/app/datasets/ds_\w+/thumbnails/\d+\.png)"', page)
    assert len(thumbs) == 6
    img = c.get(thumbs[0])
    assert img["Content-Type"] == "image/png"
    import io

    assert Image.open(io.BytesIO(img.content)).size == (96, 96)
    assert c.get(thumbs[0].replace("/0.png", "/99.png")).status_code == 404


def test_dataset_page_shows_balance_chart_samples_and_report(workspace):
    page = html(workspace.client("viewer").get(f"/app/datasets/{workspace.dataset_id}"))
    assert page.count("<svg") == 1 and "Examples per class" in page
    assert "great film 0" in page  # a sample row
    assert '<th scope="col">Class</th>' in page  # the chart's table for screen readers


# --- training --------------------------------------------------------------------------------


def test_training_form_errors_keep_the_input(workspace):
    c = workspace.client("developer")
    r = c.post(
        "/app/training/new",
        {"dataset": workspace.dataset_id, "epochs": "0", "learning_rate": "0.01"},
    )
    assert r.status_code == 400
    page = html(r)
    assert "greater than or equal to 1" in page
    assert 'value="0.01"' in page and 'value="0"' in page
    r = c.post(
        "/app/training/new",
        {"dataset": workspace.dataset_id, "base_model": "cnn-small"},
    )
    assert r.status_code == 400 and "Unknown base model" in html(r) or "must be one of" in html(r)
    assert TrainingJob.objects.for_tenant(workspace.org.org).count() == 1


def test_estimate_fragment_follows_the_form(workspace):
    c = workspace.client("developer")
    r = c.get(
        "/app/training/estimate",
        {"dataset": workspace.dataset_id, "epochs": 7},
        HTTP_HX_REQUEST="true",
    )
    assert r.status_code == 200
    body = html(r)
    assert "× 7 epochs" in body and "<html" not in body
    bad = html(c.get("/app/training/estimate", {"dataset": workspace.dataset_id, "epochs": 999}))
    assert "epochs" in bad and "less than or equal to 200" in bad


def test_job_page_polls_while_live_and_stops_with_metrics_when_done(workspace):
    ws = workspace
    c = ws.client("viewer")
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=ws.job.pk).update(
        status="running", epoch=1
    )
    live = c.get(f"/app/training/{ws.job.pk}?fragment=live", HTTP_HX_REQUEST="true")
    body = html(live)
    assert body.lstrip().startswith('<div id="job-live"') and 'hx-trigger="every 2s"' in body
    assert 'aria-valuenow="50"' in body
    full = html(c.get(f"/app/training/{ws.job.pk}"))
    assert '<meta http-equiv="refresh"' in full  # without JavaScript: a plain refresh
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=ws.job.pk).update(
        status="succeeded", epoch=2
    )
    done = html(c.get(f"/app/training/{ws.job.pk}?fragment=live", HTTP_HX_REQUEST="true"))
    assert "hx-trigger" not in done and 'aria-valuenow="100"' in done
    assert done.count("<svg") == 2  # loss and accuracy curves
    assert 'class="heat"' in done and ">3</td>" in done
    assert ws.model.pk in done


def test_cancel_from_the_job_page(workspace):
    ws = workspace
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=ws.job.pk).update(status="queued")
    r = ws.client("developer").post(f"/app/training/{ws.job.pk}/cancel")
    assert r.status_code == 302
    assert TrainingJob.objects.for_tenant(ws.org.org).get().status == "cancelled"
    again = ws.client("developer").post(f"/app/training/{ws.job.pk}/cancel", follow=True)
    assert "notice error" in html(again)  # already finished: explained, not a 500


# --- models ----------------------------------------------------------------------------------


def test_model_page_has_snippets_with_this_host(workspace):
    page = html(workspace.client("developer").get(f"/app/models/{workspace.model.pk}"))
    assert f"http://testserver/v1/models/{workspace.model.pk}/predict" in page
    assert "Authorization: Bearer $TRAINYARD_API_KEY" in page and "import requests" in page


@pytest.mark.parametrize("data, message", [({}, "Type a text"), ({"text": "   "}, "Type a text")])
def test_try_it_bad_input_is_a_400_fragment(workspace, data, message):
    r = workspace.client("developer").post(
        f"/app/models/{workspace.model.pk}/try", data, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 400 and message in html(r)
    assert html(r).lstrip().startswith('<div id="prediction"')


# --- API keys, members, billing -------------------------------------------------------------------


def test_key_secret_shown_once_and_revoked_with_confirmation(workspace):
    c = workspace.client("developer")
    r = c.post("/app/api-keys", {"name": "ci", "scopes": ["models:predict", "training:read"]})
    assert r.status_code == 200 and r["Cache-Control"] == "no-store"
    secret = re.search(r'data-testid="new-secret">(ty_live_\S+)</div>', html(r)).group(1)
    key = ApiKey.objects.for_tenant(workspace.org.org).get()
    assert key.scopes == ["models:predict", "training:read"]
    listing = html(c.get("/app/api-keys"))
    assert secret not in listing and key.prefix in listing and "Yes, revoke" in listing
    assert c.post(f"/app/api-keys/{key.pk}/revoke").status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    api = Client().get("/v1/models", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == 401


def test_key_form_errors_and_developers_see_only_their_keys(workspace):
    dev = workspace.client("developer")
    r = dev.post("/app/api-keys", {"name": "", "scopes": ["nope"]})
    assert r.status_code == 400 and "valid choice" in html(r)
    workspace.client("admin").post("/app/api-keys", {"name": "admin key", "scopes": ["usage:read"]})
    assert "admin key" not in html(dev.get("/app/api-keys"))
    assert "admin key" in html(workspace.client("owner").get("/app/api-keys"))
    admin_key = ApiKey.objects.for_tenant(workspace.org.org).get()
    assert dev.post(f"/app/api-keys/{admin_key.pk}/revoke").status_code == 404


def test_members_role_change_and_last_owner_rule(acme):
    owner = browser(acme.users["owner"])
    viewer = Membership.objects.get(organization=acme.org, user=acme.users["viewer"])
    assert (
        owner.post(f"/app/members/mem_{viewer.pk}/role", {"role": "developer"}).status_code == 302
    )
    viewer.refresh_from_db()
    assert viewer.role == "developer"
    me = Membership.objects.get(organization=acme.org, user=acme.users["owner"])
    r = owner.post(f"/app/members/mem_{me.pk}/remove", follow=True)
    assert "last owner" in html(r).lower()
    dup = owner.post("/app/members", {"email": "viewer@acme.test", "role": "viewer"})
    assert dup.status_code == 409 and "already a member" in html(dup)
    assert 'value="viewer@acme.test"' in html(dup)


def test_billing_page_shows_usage_charges_and_saves_the_cap(workspace):
    from django.utils import timezone

    from saas.metering.services import usage_record

    usage_record(
        organization_id=workspace.org.org.pk,
        meter="predictions",
        quantity=12,
        occurred_at=timezone.now(),
        source_type="prediction",
        source_id="pred_x",
    )
    c = workspace.client("billing")
    page = html(c.get("/app/billing"))
    assert "12</strong> predictions this period" in page
    assert 'data-testid="usage-predictions"' in page and "Included units" in page
    bad = c.post("/app/billing", {"monthly_spend_cap": "-3"})
    assert bad.status_code == 400 and 'value="-3"' in html(bad)
    assert c.post("/app/billing", {"monthly_spend_cap": "25.50"}).status_code == 302
    account = BillingAccount.objects.for_tenant(workspace.org.org).get()
    assert account.monthly_spend_cap == Decimal("25.50")
    assert "Spend cap 25.50" in html(c.get("/app/billing"))
    # Checkout without Stripe configured is explained, not a 500.
    r = c.post("/app/billing/checkout", {"plan": "pro"}, follow=True)
    assert r.status_code == 200 and "notice error" in html(r)


# --- plumbing --------------------------------------------------------------------------------------


def test_unknown_pages_are_html_for_browsers_and_problems_for_the_api(acme):
    c = browser(acme.users["owner"])
    r = c.get("/app/nope/nothing")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")
    api = c.get("/v1/nope", HTTP_ACCEPT="text/html")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"


def test_pages_report_their_server_time(workspace):
    r = workspace.client("owner").get("/app/")
    assert re.fullmatch(r"app;dur=\d+\.\d", r["Server-Timing"])


def test_static_assets_are_served_locally(workspace, client):
    page = html(workspace.client("owner").get("/app/"))
    for src in re.findall(r'(?:src|href)="(/static/[^"]+)"', page):
        assert client.get(src).status_code == 200, src
    assert "htmx" in page and "https://" not in re.sub(
        r'href="https://[^"]*"', "", page.split("</head>")[0]
    )


def test_try_it_without_an_inference_worker_explains_the_503(workspace, settings):
    settings.TRAINYARD_PREDICT_TIMEOUT_SECONDS = 0.5
    r = workspace.client("developer").post(
        f"/app/models/{workspace.model.pk}/try", {"text": "fine"}, HTTP_HX_REQUEST="true"
    )
    assert r.status_code == 503
    assert "No inference worker answered" in html(r)
    assert html(r).lstrip().startswith('<div id="prediction"')


def test_reloading_the_new_key_page_does_not_create_a_second_key(workspace):
    c = workspace.client("developer")
    form = {"name": "ci", "scopes": ["models:predict"], "form_token": "tok-1"}
    assert c.post("/app/api-keys", form).status_code == 200
    again = c.post("/app/api-keys", form)  # the browser re-posts on reload
    assert again.status_code == 302
    assert ApiKey.objects.for_tenant(workspace.org.org).count() == 1
    assert "already created" in html(c.get("/app/api-keys"))


def test_a_key_cannot_be_created_already_expired(workspace):
    r = workspace.client("developer").post(
        "/app/api-keys",
        {"name": "old", "scopes": ["models:predict"], "expires_at": "2020-01-01T00:00"},
    )
    assert r.status_code == 400 and "in the future" in html(r)
    assert ApiKey.objects.for_tenant(workspace.org.org).count() == 0


def test_service_errors_land_on_the_form_field(acme):
    c = browser(acme.users["developer"])
    tiny = text_csv([("good", "a"), ("fine", "a"), ("bad", "b"), ("poor", "b")])
    ds = c.post("/app/datasets/new", {"file": _file(tiny, "t.csv"), "task": "text-classification"})
    ds_id = ds["Location"].rsplit("/", 1)[1]
    r = c.post("/app/training/new", {"dataset": ds_id})
    assert r.status_code == 400
    page = html(r)
    assert 'id="id_validation_split_error"' in page and "2 examples" in page
    r = c.post("/app/training/new", {"dataset": ds_id, "base_model": "cnn-small"})
    assert 'id="id_base_model_error"' in html(r)


def test_jobs_are_listed_newest_first_and_a_deleted_dataset_is_not_linked(workspace):
    ws = workspace
    c = ws.client("owner")
    c.post("/app/training/new", {"dataset": ws.dataset_id, "epochs": 1})
    newest = TrainingJob.objects.for_tenant(ws.org.org).order_by("-created_at").first()
    listing = html(c.get("/app/training"))
    assert listing.index(newest.pk) < listing.index(ws.job.pk)
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=newest.pk).update(status="cancelled")
    assert c.post(f"/app/datasets/{ws.dataset_id}/delete").status_code == 302
    page = html(c.get(f"/app/training/{ws.job.pk}"))
    assert "(deleted)" in page and f'href="/app/datasets/{ws.dataset_id}"' not in page


def test_invitations_are_revocable_and_a_new_one_replaces_the_pending_one(
    acme, django_capture_on_commit_callbacks
):
    from saas.tenancy.models import Invitation

    owner = browser(acme.users["owner"])
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/app/members", {"email": "x@acme.test", "role": "viewer"})
        owner.post("/app/members", {"email": "x@acme.test", "role": "developer"})
    assert "owner@acme.test invited you" in mail.outbox[-1].body
    first, second = (re.search(r"token=(\S+)", m.body).group(1) for m in mail.outbox[-2:])
    assert "Invitation not found" in html(Client().get(f"/invitations/accept?token={first}"))
    pending = Invitation.objects.for_tenant(acme.org).get(revoked_at__isnull=True)
    page = html(owner.get("/app/members"))
    assert (
        page.count("<td>x@acme.test</td>") == 1 and f"/app/invitations/{pending.pk}/revoke" in page
    )
    assert owner.post(f"/app/invitations/{pending.pk}/revoke").status_code == 302
    assert "Invitation not found" in html(Client().get(f"/invitations/accept?token={second}"))
    assert owner.post(f"/app/invitations/{pending.pk}/revoke").status_code == 404
    globex = Org("globex")
    with django_capture_on_commit_callbacks(execute=True):
        browser(globex.users["owner"]).post("/app/members", {"email": "y@g.test", "role": "viewer"})
    theirs = Invitation.objects.for_tenant(globex.org).get()
    assert owner.post(f"/app/invitations/{theirs.pk}/revoke").status_code == 404


def test_admins_are_not_offered_the_owner_role(acme):
    page = html(browser(acme.users["admin"]).get("/app/members"))
    assert '<option value="owner"' not in page
    assert '<option value="owner"' in html(browser(acme.users["owner"]).get("/app/members"))


def test_a_zip_uploaded_as_text_is_explained(acme):
    r = browser(acme.users["owner"]).post(
        "/app/datasets/new",
        {
            "file": _file(image_zip({"a/1.png": png_bytes()}), "x.zip"),
            "task": "text-classification",
        },
    )
    assert r.status_code == 400 and "ZIP archive" in html(r)


def test_account_signup_needs_an_organisation_or_an_invitation(db):
    from saas.common.actor import Actor
    from saas.common.errors import ValidationFailed
    from saas.tenancy.services import account_signup

    with pytest.raises(ValidationFailed):
        account_signup(email="z@x.test", password=PASSWORD, actor=Actor.system())
    assert not get_user_model().objects.filter(email="z@x.test").exists()
    m = account_signup(
        email="z@x.test", password=PASSWORD, organization_name="Zed & Co", actor=Actor.system()
    )
    assert m.role == "owner" and m.organization.slug.startswith("zed-co-")
