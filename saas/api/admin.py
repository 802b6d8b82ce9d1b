"""Operator views of tenant-owned data in the Django admin (every tenant, read-mostly)."""

from django.contrib import admin

from saas.apikeys.models import ApiKey
from saas.datasets.models import Dataset
from saas.jobs.models import TrainingJob
from saas.metering.models import UsageEvent
from saas.registry.models import TrainedModel
from saas.tenancy.admin import TenantModelAdmin
from saas.tenancy.models import AuditEvent


@admin.register(ApiKey)
class ApiKeyAdmin(TenantModelAdmin):
    list_display = (
        "id",
        "organization",
        "name",
        "public_id",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    exclude = ("secret_sha256",)


@admin.register(Dataset)
class DatasetAdmin(TenantModelAdmin):
    list_display = ("id", "organization", "name", "task", "status", "num_examples", "created_at")


@admin.register(TrainingJob)
class TrainingJobAdmin(TenantModelAdmin):
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


@admin.register(TrainedModel)
class TrainedModelAdmin(TenantModelAdmin):
    list_display = ("id", "organization", "task", "base_model", "created_at")


@admin.register(UsageEvent)
class UsageEventAdmin(TenantModelAdmin):
    list_display = ("organization", "meter", "quantity", "unit", "occurred_at", "source_id")
    list_filter = ("meter",)


@admin.register(AuditEvent)
class AuditEventAdmin(TenantModelAdmin):
    list_display = (
        "organization",
        "action",
        "target_id",
        "actor_user",
        "actor_api_key",
        "ip",
        "created_at",
    )
    list_filter = ("action",)
