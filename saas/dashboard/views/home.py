"""The overview page."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from saas.apikeys import selectors as key_selectors
from saas.billing import services as billing
from saas.datasets import selectors as dataset_selectors
from saas.jobs import selectors as job_selectors
from saas.registry import selectors as model_selectors

from ..base import MEMBERSHIP, org_page
from ..presenters.home import getting_started_steps
from .common import page


@org_page(read=MEMBERSHIP)
@require_GET
def home(request):
    """The overview: the getting-started checklist, recent jobs and models, included units."""
    org = request.tenant.organization
    can = request.tenant.can
    datasets = dataset_selectors.dataset_list(organization=org) if can.datasets_read else None
    jobs = job_selectors.training_job_list(organization_id=org.pk) if can.training_read else None
    models = (
        model_selectors.model_list_summaries(organization_id=org.pk) if can.training_read else None
    )
    keys = (
        key_selectors.api_key_list(organization_id=org.pk, active_only=True)
        if can.keys_read
        else None
    )
    steps = getting_started_steps(
        # A section the role cannot read counts as not done (and is not queried).
        has_dataset=datasets is not None and datasets.exists(),
        has_job=jobs is not None and jobs.exists(),
        has_model=models is not None and models.exists(),
        has_key=keys is not None and keys.exists(),
        can_upload=can.datasets_write,
        can_train=can.training_write,
        can_predict=can.models_predict,
        can_create_key=can.keys_manage_own,
    )
    return page(
        request,
        "dashboard/home.html",
        {
            "steps": steps,
            "jobs": list(jobs[:5]) if jobs is not None else [],
            "models": list(models[:5]) if models is not None else [],
            "levels": billing.usage_levels(organization=org) if can.usage_read else [],
        },
    )
