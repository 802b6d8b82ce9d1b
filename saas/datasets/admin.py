"""Datasets in the operator admin (every tenant)."""

from django.contrib import admin

from saas.tenancy.admin import TenantModelAdmin

from .models import Dataset


@admin.register(Dataset)
class DatasetAdmin(TenantModelAdmin):
    list_display = ("id", "organization", "name", "task", "status", "num_examples", "created_at")
