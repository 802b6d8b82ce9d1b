"""Training pages (saas/dashboard/views/jobs.py): the form and its errors, the estimate
fragment, the live job page, cancelling, the list.

A real worker training and predicting through these pages is in
tests/e2e/test_dashboard_browser.py.
"""

from __future__ import annotations

from saas.jobs.models import TrainingJob
from tests.conftest import text_csv

from .conftest import browser, html
from .conftest import named_file as _file


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
