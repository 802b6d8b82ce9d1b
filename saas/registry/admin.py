"""Trained models in the operator admin (every tenant): read-only.

A model row is what its job's completion wrote (classes, metrics, the artifact's key, size
and hash); an edit would make it disagree with the stored SavedModel, and a delete would leave
the artifact in storage and the ledger's rows pointing at nothing (no service deletes models).
"""

from django.contrib import admin

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin

from .models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = ("id", "organization", "task", "base_model", "created_at")
