"""The customer dashboard in a real browser (Debian's Chromium driven by Playwright) against the
live stack: gunicorn behind the data plane (serve), a training and a maintenance worker, on
PostgreSQL and Redis.

Screenshots of every page go to ``$TRAINYARD_SCREENSHOTS`` (default: a pytest temporary
folder); the folder is printed. Chromium must be installed (``.ci/run`` installs Debian's
``chromium`` when it is missing); Playwright never downloads a browser here.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from tests.browser_support import browser_page, chromium_browser, screenshots_dir, snap
from tests.conftest import DATA

pytestmark = [pytest.mark.e2e, pytest.mark.tf, pytest.mark.browser]

SENTIMENT = DATA / "text/sentiment_labelled_sentences.csv"
PASSWORD = "correct-horse-battery-9"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return screenshots_dir(tmp_path_factory, "screens")


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def page(chromium, stack):
    with browser_page(
        chromium, base_url=stack.base_url, width=1280, height=860, timeout_ms=30_000
    ) as pg:
        yield pg


def confirmation_path(mail_dir: Path, email: str, timeout: float = 20.0) -> str:
    """The path of the sign-up confirmation link emailed to ``email`` (the file backend's
    messages in ``mail_dir``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for msg in sorted(mail_dir.glob("*")):
            text = msg.read_text(errors="replace")
            found = re.search(r"https?://[^/\s]+(/signup/confirm/\S+)", text)
            if email in text and found:
                return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"no confirmation email for {email}")


def csrf(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")


def test_sign_up_to_trained_model_to_api_call(page, stack, shots, transactional_db):
    email = f"ada-{time.monotonic_ns()}@example.com"

    # Sign up: a user and an organisation on the free plan.
    page.goto("/signup")
    snap(page, shots, "01-signup")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Organisation name").fill("Ada Robotics")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/signup/sent")
    # The address is confirmed with the emailed link and the password chosen.
    page.goto(confirmation_path(Path(stack.env["EMAIL_FILE_PATH"]), email))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    page.wait_for_url("**/app/")
    assert "Ada Robotics" in page.locator("h1").inner_text()
    assert "free plan" in page.content()

    # Upload the shipped sentiment CSV (the task is picked from the file type).
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="Upload a dataset").first.click()
    # A broken file first, dropped on the drop zone: the problems appear in place (htmx),
    # with the offending row.
    dropped = page.evaluate_handle(
        """() => {
            const dt = new DataTransfer();
            const body = ["text,label", "ok,a", "fine,a", ",b", ""].join(String.fromCharCode(10));
            dt.items.add(new File([body], "broken.csv", {type: "text/csv"}));
            return dt;
        }"""
    )
    page.dispatch_event(".dropzone", "drop", {"dataTransfer": dropped})
    assert "broken.csv" in page.locator(".dropzone .chosen").inner_text()
    page.get_by_role("button", name="Upload and validate").click()
    problems = page.locator("#problems")
    problems.wait_for()
    assert "nothing was stored" in problems.inner_text()
    assert "Row on line 4" in problems.inner_text()
    snap(page, shots, "02a-upload-problems")
    page.set_input_files("input[name=file]", str(SENTIMENT))
    assert page.get_by_label("Task").input_value() == "text-classification"
    snap(page, shots, "02-upload")
    page.get_by_role("button", name="Upload and validate").click()
    page.wait_for_url(re.compile(r"/app/datasets/ds_\w+$"))
    assert "3000 examples" in page.content()
    assert page.locator("figure.chart svg").count() == 1  # class balance
    snap(page, shots, "03-dataset")

    # Train with the defaults; the estimate is shown before starting.
    page.get_by_role("link", name="Train a model on it").click()
    page.wait_for_url("**/app/training/new?dataset=*")
    page.locator("#estimate .stat").wait_for()
    page.get_by_label("Epochs").fill("6")
    page.wait_for_function(
        "document.querySelector('#estimate') && /6 epochs/.test(document.querySelector('#estimate').innerText)"
    )
    snap(page, shots, "04-train-form")
    page.get_by_role("button", name="Start training").click()
    page.wait_for_url(re.compile(r"/app/training/tj_\w+$"))
    job_id = page.url.rsplit("/", 1)[1]

    # Watch the page update itself (htmx polling) until the bar reaches 100 %.
    seen: set[str] = set()
    deadline = time.monotonic() + 240
    running_shot = False
    while time.monotonic() < deadline:
        status = page.get_by_test_id("job-status").inner_text()
        seen.add(page.get_by_test_id("job-percent").inner_text())
        if status == "running" and not running_shot and page.locator("figure.chart").count():
            snap(page, shots, "05-job-running")
            running_shot = True
        if status in ("succeeded", "failed", "cancelled"):
            break
        page.wait_for_timeout(300)
    assert status == "succeeded", page.content()[:3000]
    assert page.get_by_test_id("job-percent").inner_text() == "100%"
    assert page.get_by_test_id("job-progress").get_attribute("aria-valuenow") == "100"
    assert len(seen) >= 2, f"the page never moved: {seen}"  # it updated without a reload
    assert page.locator("table.heat td").count() == 4  # 2×2 confusion matrix
    snap(page, shots, "06-job-succeeded")

    # Try the model in the browser.
    page.get_by_test_id("model-link").click()
    page.wait_for_url(re.compile(r"/app/models/mdl_\w+$"))
    model_id = page.url.rsplit("/", 1)[1]
    page.get_by_label("Text to classify").fill("Absolutely love it, works great and looks good")
    page.get_by_role("button", name="Predict").click()
    label = page.get_by_test_id("predicted-label")
    label.wait_for()
    assert label.inner_text() in ("positive", "negative")
    assert page.locator("ul.scores li").count() == 2
    snap(page, shots, "07-model-try")

    # Create an API key; the secret is shown once.
    nav.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("browser test")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert secret.startswith("ty_live_")
    snap(page, shots, "08-api-keys")
    page.reload()
    assert secret not in page.content()  # never shown again

    # Call the API with it from the test.
    r = requests.post(
        f"{stack.base_url}/v1/models/{model_id}/predict",
        headers={"Authorization": f"Bearer {secret}"},
        json={"inputs": ["Terrible, broke in a day", "Great value", "Would buy again"]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 3

    # The usage page counts the 1 + 3 predictions (the try-it one too) and shows the training,
    # once the data plane's metering windows are flushed to the ledger (within ~3 s).
    nav.get_by_role("link", name="Usage & billing").click()
    predictions = page.get_by_test_id("usage-predictions")

    def shown() -> str:
        return predictions.inner_text() if predictions.count() else ""

    deadline = time.monotonic() + 10
    while not re.search(r"\b4 prediction", shown()):
        assert time.monotonic() < deadline, shown()
        page.wait_for_timeout(500)
        page.reload()
    assert page.get_by_test_id("usage-training_compute_seconds").count() == 1
    snap(page, shots, "09-usage-billing")

    # The remaining pages, for the screenshots.
    for path, name in [
        ("/app/", "10-overview"),
        ("/app/datasets", "11-datasets"),
        ("/app/training", "12-training"),
        ("/app/models", "13-models"),
        ("/app/members", "14-members"),
        (f"/app/training/{job_id}", "15-job"),
    ]:
        page.goto(path)
        snap(page, shots, name)


def test_viewer_sees_no_write_controls_and_other_orgs_are_404(page, stack, shots, api):
    from django.contrib.auth import get_user_model

    from saas.common.actor import Actor
    from saas.tenancy.models import Membership
    from saas.tenancy.services import organization_create

    # The owner's key uploads a dataset and starts a long job.
    ds = api.json(
        "POST",
        "/v1/datasets",
        201,
        files={"file": ("s.csv", SENTIMENT.read_bytes())},
        data={"task": "text-classification"},
    )
    job = api.json(
        "POST",
        "/v1/training-jobs",
        201,
        json={"dataset": ds["id"], "hyperparameters": {"epochs": 200}},
    )

    viewer = get_user_model().objects.create_user(
        username=f"viewer-{time.monotonic_ns()}@example.com",
        email=f"viewer-{time.monotonic_ns()}@example.com",
        password=PASSWORD,
    )
    Membership.objects.create(organization=api.org, user=viewer, role="viewer")
    # Another organisation with a dataset of its own.
    other = organization_create(
        slug=f"other-{time.monotonic_ns()}",
        name="Other",
        owner_email=f"o{time.monotonic_ns()}@x.test",
        actor=Actor.system(),
    )
    from saas.apikeys.services import api_key_create

    other_key = api_key_create(organization=other, actor=Actor.system()).secret
    other_ds = requests.post(
        f"{stack.base_url}/v1/datasets",
        headers={"Authorization": f"Bearer {other_key}"},
        files={"file": ("o.csv", SENTIMENT.read_bytes())},
        data={"task": "text-classification"},
        timeout=60,
    ).json()

    try:
        page.goto("/login")
        snap(page, shots, "20-login")
        page.get_by_label("Email").fill(viewer.email.upper())  # any letter case
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/app/")

        nav = page.get_by_role("navigation", name="Main")
        assert nav.get_by_role("link", name="API keys").count() == 0
        assert nav.get_by_role("link", name="Usage & billing").count() == 0

        page.goto("/app/datasets")
        assert page.get_by_role("link", name="Upload a dataset").count() == 0
        page.goto(f"/app/datasets/{ds['id']}")
        assert page.get_by_text("Delete this dataset").count() == 0
        assert page.get_by_role("link", name="Train a model on it").count() == 0
        page.goto(f"/app/training/{job['id']}")
        assert page.get_by_test_id("job-status").inner_text() in ("queued", "running")
        assert page.get_by_role("button", name="Cancel job").count() == 0
        snap(page, shots, "21-viewer-job")
        page.goto("/app/members")
        assert page.get_by_role("button", name="Send invitation").count() == 0

        # Posting anyway is refused.
        token = csrf(page)
        for url, form in [
            (f"/app/training/{job['id']}/cancel", {}),
            (f"/app/datasets/{ds['id']}/delete", {}),
            ("/app/api-keys", {"name": "x", "scopes": "models:predict"}),
            ("/app/members", {"email": "a@b.test", "role": "viewer"}),
            ("/app/training/new", {"dataset": ds["id"]}),
        ]:
            r = page.request.post(url, form=form, headers={"X-CSRFToken": token})
            assert r.status == 403, (url, r.status)
        assert page.request.get("/app/api-keys").status == 403
        snap_page = page.goto("/app/api-keys")
        assert snap_page.status == 403
        snap(page, shots, "22-viewer-403")

        # Another organisation's pages do not exist for this user.
        for url in [
            f"/app/datasets/{other_ds['id']}",
            f"/app/datasets/{other_ds['id']}/thumbnails/0.png",
            f"/app/training/{job['id']}x",
        ]:
            assert page.request.get(url).status == 404, url
        resp = page.goto(f"/app/datasets/{other_ds['id']}")
        assert resp.status == 404
        assert other_ds["id"] not in page.content()
        snap(page, shots, "23-other-org-404")
    finally:
        api.call("POST", f"/v1/training-jobs/{job['id']}/cancel")
        api.wait(job["id"], statuses=("cancelled", "failed", "succeeded"), timeout=120)
