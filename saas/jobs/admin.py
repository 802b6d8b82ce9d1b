"""Training jobs and their timelines in the operator admin: read-only. Job state (status,
attempt, progress, result) and the timeline's events change only through the job state machine
in ``saas.jobs.services``."""

from django.contrib import admin

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin

from .models import JobEvent, TrainingJob


@admin.register(TrainingJob)
class TrainingJobAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = (
        "id",
        "organization",
        "status",
        "base_model",
        "attempt",
        "created_at",
        "finished_at",
    )
    list_filter = ("status", "device")


@admin.register(JobEvent)
class JobEventAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = ("job", "organization", "type", "message", "created_at")
    list_filter = ("type",)
