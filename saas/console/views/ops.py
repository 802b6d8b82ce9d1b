"""At a glance (queues, workers, jobs, stuck jobs, 24-h job figures, predictions per minute) and
the jobs page with its actions (cancel, retry a failed or cancelled job, requeue stuck jobs)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone

from saas.inference.replicas import data_plane_replicas
from saas.jobs import operations
from saas.jobs.models import TrainingJob
from saas.jobs.services import training_job_cancel, training_job_retry, training_jobs_reap_stuck
from saas.jobs.services.retry import RETRYABLE_STATUSES
from saas.metering.selectors import predictions_per_minute
from saas.tenancy.audit import audit_record

from ..base import console_error, staff_page


@staff_page(read=True)
def overview(request):
    """The console's front page: what is backed up, who is alive, what is stuck."""
    now = timezone.now()
    return render(
        request,
        "console/overview.html",
        {
            "section": "overview",
            "now": now,
            "queues": operations.queue_depths(now=now),
            "workers": operations.workers_online(timeout=1.0),
            "stuck": operations.jobs_stuck(now=now),
            "active": operations.jobs_active(limit=50),
            "stats": operations.job_stats(hours=24),
            "predictions": predictions_per_minute(minutes=15, now=now),
            "replicas": data_plane_replicas(),
        },
    )


@staff_page(read=True)
def jobs(request):
    """Running and queued jobs (oldest first), with stuck ones marked; ?status= filters."""
    return _jobs_page(request, request.GET.get("status", ""))


def _jobs_page(request, status: str, *, problems: list[str] | None = None, code: int = 200):
    """The jobs page filtered by ``status`` ("" for queued and running), with ``problems``
    listed (a refused action re-renders it with its 400)."""
    now = timezone.now()
    if status and status not in TrainingJob.Status.values:
        return console_error(
            request, 400, "Unknown status", f"status must be one of {TrainingJob.Status.values}"
        )
    qs = TrainingJob.objects.unscoped_all_tenants().select_related("organization")  # staff view
    qs = qs.filter(status=status) if status else qs.filter(status__in=["queued", "running"])
    stuck = {j.pk for j in operations.jobs_stuck(now=now)}
    return render(
        request,
        "console/jobs.html",
        {
            "section": "jobs",
            "now": now,
            "status": status,
            "statuses": TrainingJob.Status.values,
            "retryable": RETRYABLE_STATUSES,
            "jobs": list(qs.order_by("-created_at")[:200]),
            "stuck": stuck,
            "problems": problems or [],
        },
        status=code,
    )


@staff_page(write=True)
def job_cancel(request, job_id: str):
    """Cancel a queued or running job through the domain service (audited with the staff user);
    a finished job is a 409 page."""
    job = TrainingJob.objects.unscoped_all_tenants().filter(pk=job_id).first()  # staff action
    if job is None:
        raise Http404
    training_job_cancel(job=job, actor=request.actor)
    messages.success(request, f"Cancellation requested for {job.pk} ({job.organization_id}).")
    return redirect("console:jobs")


@staff_page(write=True)
def job_retry(request, job_id: str):
    """Retry a failed or cancelled job: a fresh job with the same inputs through
    ``training_job_retry`` (the tenant's quotas, spend caps and active-job limit apply),
    audited with the staff user and the required ``reason``.

    No reason: the jobs page again with a 400 and the problem listed, nothing created. A job
    in another state (or already retried) is a 409 page, a quota or limit refusal its own
    status (402, 429); an unknown job a 404."""
    job = TrainingJob.objects.unscoped_all_tenants().filter(pk=job_id).first()  # staff action
    if job is None:
        raise Http404
    reason = request.POST.get("reason", "").strip()[:500]
    if not reason:
        back = request.POST.get("status", "")
        back = back if back in TrainingJob.Status.values else ""
        return _jobs_page(
            request, back, problems=["A reason is required to retry a job."], code=400
        )
    new = training_job_retry(job=job, actor=request.actor, reason=reason)
    messages.success(
        request, f"Retried {job.pk} as {new.pk} ({job.organization_id}), queued on {new.device}."
    )
    return redirect("console:jobs")


@staff_page(write=True)
def jobs_requeue_stuck(request):
    """Re-enqueue every stuck job now (the reaper's own path: a takeover ticket each, resumed from
    its checkpoint), audited per job in its tenant's log with the staff user."""
    stuck = operations.jobs_stuck()
    requeued = set(training_jobs_reap_stuck())
    for job in stuck:
        if job.pk in requeued:
            audit_record(
                organization_id=job.organization_id,
                action="training_job.requeued",
                actor=request.actor,
                target_type="training_job",
                target_id=job.pk,
                via="console",
                heartbeat_at=job.heartbeat_at.isoformat() if job.heartbeat_at else None,
            )
    messages.success(request, f"Re-enqueued {len(requeued)} stuck job(s).")
    # A fixed target, never a client-supplied URL (no open redirect).
    return redirect("console:jobs" if request.POST.get("next") == "jobs" else "console:overview")


urlpatterns = [
    path("", overview, name="overview"),
    path("jobs", jobs, name="jobs"),
    path("jobs/requeue-stuck", jobs_requeue_stuck, name="jobs_requeue_stuck"),
    path("jobs/<str:job_id>/cancel", job_cancel, name="job_cancel"),
    path("jobs/<str:job_id>/retry", job_retry, name="job_retry"),
]
