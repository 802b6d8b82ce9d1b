"""Dataset pages: the list, the upload form, one dataset, its thumbnails, deleting it."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from saas.billing.selectors import plan_limits_get
from saas.common.errors import DomainError, PayloadTooLarge, ValidationFailed
from saas.datasets import selectors as dataset_selectors
from saas.datasets import services as dataset_services
from saas.datasets.models import Task
from saas.datasets.validation import TooManyClasses
from saas.jobs import selectors as job_selectors
from saas.tenancy.permissions import Action

from .. import charts
from ..base import error_page, org_page
from ..forms import DatasetUploadForm
from ..presenters.common import count, problem_list
from ..presenters.datasets import class_rows, offending_lines, thumbnails
from .common import LIST_LIMIT, bound, page

#: Rows of a text dataset shown on its page.
SAMPLE_ROWS = 12
#: Sample images of an image dataset shown on its page.
THUMBNAILS = 24


@org_page(read=Action.DATASETS_READ)
@require_GET
def datasets(request):
    """The organisation's datasets, newest first (at most ``LIST_LIMIT``)."""
    rows = dataset_selectors.dataset_list(organization=request.tenant.organization)[:LIST_LIMIT]
    return page(request, "dashboard/datasets/list.html", {"datasets": rows})


@org_page(read=Action.DATASETS_WRITE, write=Action.DATASETS_WRITE)
def dataset_new(request):
    """Upload a dataset. Validation problems are listed with the offending rows or files."""
    form = DatasetUploadForm(bound(request), request.FILES if request.method == "POST" else None)
    problems: list[dict] = []
    summary = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            upload = data["file"]
            try:
                ds = dataset_services.dataset_create(
                    organization=request.tenant.organization,
                    file=upload,
                    size=upload.size,
                    task=data["task"],
                    name=data["name"] or upload.name or "dataset",
                    text_column=data["text_column"] or "text",
                    label_column=data["label_column"] or "label",
                    max_classes=plan_limits_get(
                        organization=request.tenant.organization
                    ).max_classes,
                    actor=request.tenant.actor,
                )
            except (ValidationFailed, PayloadTooLarge, TooManyClasses) as exc:
                status = exc.status
                summary = exc.detail
                problems = problem_list(exc.errors)
                if data["task"] == Task.TEXT_CLASSIFICATION:
                    upload.seek(0)
                    # The underlying file, line by line (a 50 MB upload is never read whole).
                    problems = offending_lines(upload.file, problems)
            else:
                messages.success(
                    request,
                    f"Dataset “{ds.name}” is ready: {count(ds.num_examples)} examples.",
                )
                target = reverse("dashboard:dataset", args=[ds.pk])
                if request.htmx:
                    return HttpResponseClientRedirect(target)
                return redirect(target)
        else:
            status = 400
    return page(
        request,
        "dashboard/datasets/new.html",
        {
            "form": form,
            "problems": problems,
            "summary": summary,
            "max_bytes": settings.TRAINYARD_MAX_UPLOAD_BYTES,
        },
        status=status,
    )


@org_page(read=Action.DATASETS_READ)
@require_GET
def dataset_detail(request, dataset_id: str):
    """One dataset: class balance chart, report, warnings, sample rows or thumbnails, its jobs."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    is_text = ds.task == Task.TEXT_CLASSIFICATION
    samples = (
        dataset_selectors.dataset_sample_rows(dataset=ds, limit=SAMPLE_ROWS) if is_text else []
    )
    thumbs = thumbnails(dataset_selectors.dataset_sample_images(dataset=ds, limit=THUMBNAILS))
    jobs = job_selectors.training_job_list(organization_id=ds.organization_id, dataset_id=ds.pk)
    return page(
        request,
        "dashboard/datasets/detail.html",
        {
            "ds": ds,
            "is_text": is_text,
            "chart": charts.class_balance(ds.classes),
            "classes": class_rows(ds.classes),
            "samples": samples,
            "thumbs": thumbs,
            "jobs": list(jobs[:10]),
        },
    )


@org_page(read=Action.DATASETS_READ)
@require_GET
def dataset_thumbnail(request, dataset_id: str, n: int):
    """A ≤96 px PNG of the ``n``-th sample image of an image dataset."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    png = dataset_selectors.dataset_thumbnail_png(dataset=ds, n=n)
    if png is None:
        return error_page(request, 404, "Not found", "No such sample image.")
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@org_page(write=Action.DATASETS_WRITE)
@require_POST
def dataset_delete(request, dataset_id: str):
    """Delete a dataset (refused with a message while a queued or running job uses it)."""
    ds = dataset_selectors.dataset_get(
        organization=request.tenant.organization, dataset_id=dataset_id
    )
    try:
        dataset_services.dataset_delete(dataset=ds, actor=request.tenant.actor)
    except DomainError as exc:
        messages.error(request, exc.detail)
        return redirect("dashboard:dataset", dataset_id=ds.pk)
    messages.success(request, f"Dataset “{ds.name}” deleted.")
    return redirect("dashboard:datasets")
