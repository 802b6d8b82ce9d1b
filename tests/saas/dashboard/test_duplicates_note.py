"""The job and model pages show the duplicates note beside the metrics when the runner put one
there (workers/ml/splits.py ``duplicate_summary``), and nothing when it did not; the API
returns it inside ``metrics``."""

from __future__ import annotations

import pytest

from saas.jobs.models import TrainingJob
from saas.registry.models import TrainedModel
from tests.saas.dashboard.conftest import html

pytestmark = pytest.mark.django_db

NOTE = "95% of the examples repeat another one (after normalising whitespace and case)."


def test_the_note_is_shown_beside_the_metrics(workspace):
    ws = workspace
    c = ws.client("viewer")
    job_page = f"/app/training/{ws.job.pk}"
    assert 'data-testid="duplicates-note"' not in html(c.get(job_page))
    assert 'data-testid="duplicates-note"' not in html(c.get(f"/app/models/{ws.model.pk}"))

    metrics = {**ws.model.metrics, "duplicates": {"share": 0.95, "groups": 10, "note": NOTE}}
    TrainingJob.objects.for_tenant(ws.org.org).filter(pk=ws.job.pk).update(metrics=metrics)
    TrainedModel.objects.for_tenant(ws.org.org).filter(pk=ws.model.pk).update(metrics=metrics)
    for page in (job_page, f"/app/models/{ws.model.pk}"):
        body = html(c.get(page))
        assert 'data-testid="duplicates-note"' in body and NOTE in body, page
    api = ws.org.key().get(f"/v1/training-jobs/{ws.job.pk}").json()
    assert api["metrics"]["duplicates"]["note"] == NOTE
