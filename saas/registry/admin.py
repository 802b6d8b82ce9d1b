"""Trained models in the operator admin (every tenant)."""

from django.contrib import admin

from saas.tenancy.admin import TenantModelAdmin

from .models import TrainedModel


@admin.register(TrainedModel)
class TrainedModelAdmin(TenantModelAdmin):
    list_display = ("id", "organization", "task", "base_model", "created_at")
