from django.contrib import admin

from .models import Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "status", "created_at")
    search_fields = ("slug", "name")
    inlines = [MembershipInline]


class TenantModelAdmin(admin.ModelAdmin):
    """Admin for tenant-owned models: the operator console sees every tenant (on purpose)."""

    def get_queryset(self, request):
        return self.model.objects.unscoped_all_tenants()
