"""Trained models in the operator admin (every tenant): read-only.

A model row is what its job's completion wrote (classes, metrics, the artifact's key, size
and hash); an edit would make it disagree with the stored SavedModel, and a delete here would
skip what ``model_delete`` does (the audit event, the artifact's removal, the data plane's
eviction) and leave the ledger's rows pointing at nothing: deleted models keep their row, with
``deleted_at`` set.
"""

from django.contrib import admin

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin

from .models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = ("id", "organization", "task", "base_model", "created_at", "deleted_at")
