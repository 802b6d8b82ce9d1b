"""Training pages: the job list, the new-job form and its live estimate, one job, cancelling."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from saas.billing import services as billing
from saas.common.errors import DomainError
from saas.contract import hyperparameters as hp
from saas.datasets import selectors as dataset_selectors
from saas.jobs import selectors as job_selectors
from saas.jobs import services as job_services
from saas.registry import selectors as model_selectors
from saas.tenancy.permissions import Action

from .. import charts
from ..base import org_page
from ..forms import TrainingForm
from ..presenters.common import form_problems, problem_list, split_field_problems
from ..presenters.jobs import TIMELINE_EVENTS, job_context
from .common import LIST_LIMIT, bound, page

#: The ``?status=`` values the job list filters on (anything else shows every job).
STATUS_FILTERS = ("queued", "running", "succeeded", "failed", "cancelled")


@org_page(read=Action.TRAINING_READ)
@require_GET
def jobs(request):
    """Training jobs, newest first, optionally ``?status=``."""
    status = request.GET.get("status")
    rows = job_selectors.training_job_list(
        organization_id=request.tenant.organization.pk,
        status=status if status in STATUS_FILTERS else None,
    )
    return page(request, "dashboard/jobs/list.html", {"jobs": rows[:LIST_LIMIT], "status": status})


def _training_form(request, data=None) -> TrainingForm:
    """The training form over the organisation's datasets, ``?dataset=`` preselected."""
    usable = list(
        dataset_selectors.dataset_list(organization=request.tenant.organization)[:LIST_LIMIT]
    )
    initial = {"dataset": request.GET.get("dataset"), "seed": 0}
    form = TrainingForm(data, datasets=usable, initial=initial)
    for name in TrainingForm.HYPERPARAMETER_FIELDS:
        form.fields[name].widget.attrs["placeholder"] = "default"
    return form


def _estimate(request, form: TrainingForm) -> tuple[dict | None, list[dict]]:
    """The dry-run estimate for a valid form, or ``(None, problems)``."""
    data = form.cleaned_data
    dataset = form.datasets[data["dataset"]]  # a valid form names one of these datasets
    try:
        return (
            job_services.training_job_estimate(
                organization=request.tenant.organization,
                dataset=dataset,
                base_model=data.get("base_model") or None,
                hyperparameters=form.hyperparameters(),
            ),
            [],
        )
    except DomainError as exc:
        return None, problem_list(exc.errors) or [{"field": None, "message": exc.detail}]


@org_page(read=Action.TRAINING_WRITE, write=Action.TRAINING_WRITE)
def job_new(request):
    """Start a training job; the estimated cost is shown before starting (and live with htmx)."""
    form = _training_form(request, bound(request))
    estimate: dict | None = None
    problems: list[dict] = []
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = job_services.training_job_create(
                    organization=request.tenant.organization,
                    dataset=form.datasets[data["dataset"]],
                    base_model=data.get("base_model") or None,
                    hyperparameters=form.hyperparameters(),
                    seed=data.get("seed") or 0,
                    actor=request.tenant.actor,
                )
            except DomainError as exc:
                status = exc.status
                on_fields, problems = split_field_problems(
                    problem_list(exc.errors) or [{"field": None, "message": exc.detail}],
                    fields=form.fields,
                    fallback=exc.detail,
                )
                for name, message in on_fields:
                    form.add_error(name, message)
            else:
                messages.success(request, f"Training job {job.pk} queued.")
                return redirect("dashboard:job", job_id=job.pk)
        else:
            status = 400
    elif form.datasets:  # the dataset field's choices, in order
        # Show the default configuration's estimate straight away.
        preset = {"dataset": form.initial.get("dataset") or next(iter(form.datasets))}
        probe = _training_form(request, preset)
        if probe.is_valid():
            estimate, _ = _estimate(request, probe)
    return page(
        request,
        "dashboard/jobs/new.html",
        {"form": form, "estimate": estimate, "problems": problems, "defaults": dict(hp.DEFAULTS)},
        status=status,
    )


@org_page(read=Action.TRAINING_WRITE)
@require_GET
def job_estimate(request):
    """htmx fragment: the estimate for the form's current values."""
    form = _training_form(request, request.GET)
    estimate: dict | None = None
    problems: list[dict] = []
    if form.is_valid():
        estimate, problems = _estimate(request, form)
    else:
        problems = form_problems(form.errors)
    return page(
        request, "dashboard/jobs/_estimate.html", {"estimate": estimate, "problems": problems}
    )


def _job_context(job) -> dict:
    """The job page's context: what the selectors say about ``job``, then its presentation."""
    events = list(job_selectors.training_job_events(job=job))
    done = job.status == "succeeded"
    position, reason = (
        job_selectors.training_job_queue_info(job=job) if job.status == "queued" else (None, None)
    )
    model = (
        model_selectors.model_for_job(organization_id=job.organization_id, job_id=job.pk)
        if done
        else None
    )
    shown = job_context(
        status=job.status,
        epoch=job.epoch,
        hyperparameters=job.hyperparameters,
        metrics=job.metrics,
        epoch_reports=[e.data for e in events if e.type == "epoch"],
    )
    return {
        **shown,
        "job": job,
        "events": events[-TIMELINE_EVENTS:],
        "curves": charts.training_curves(shown["epochs"]),
        "queue_position": position,
        "wait_reason": reason,
        "model": model,
        "currency": billing.billing_account_get(
            organization=job.organization
        ).plan.currency.upper(),
    }


@org_page(read=Action.TRAINING_READ)
@require_GET
def job_detail(request, job_id: str):
    """The job page; with htmx it polls itself (``_live.html``) every 2 s until the job ends."""
    job = job_selectors.training_job_get(
        organization_id=request.tenant.organization.pk, job_id=job_id
    )
    context = _job_context(job)
    if request.htmx and request.GET.get("fragment") == "live":
        return page(request, "dashboard/jobs/_live.html", context)
    return page(request, "dashboard/jobs/detail.html", context)


@org_page(write=Action.TRAINING_WRITE)
@require_POST
def job_cancel(request, job_id: str):
    """Cancel a queued job now, or ask a running one to stop before its next batch."""
    job = job_selectors.training_job_get(
        organization_id=request.tenant.organization.pk, job_id=job_id
    )
    try:
        job_services.training_job_cancel(job=job, actor=request.tenant.actor)
    except DomainError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "Cancellation requested: the job stops before its next batch.")
    return redirect("dashboard:job", job_id=job.pk)
