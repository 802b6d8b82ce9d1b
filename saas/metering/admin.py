"""The usage ledger in the operator admin: read-only (append-only; corrections are new rows
written by ``saas.metering.services``)."""

from django.contrib import admin

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin

from .models import UsageEvent


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    list_display = ("organization", "meter", "quantity", "unit", "occurred_at", "source_id")
    list_filter = ("meter",)
