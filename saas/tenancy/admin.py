"""The operator admin for organisations, memberships and the audit log, and the admin bases
every app's ``admin.py`` uses.

The admin reads every tenant (on purpose) and changes nothing behind the services' back:
an organisation's status changes through actions that call the tenancy services (audited, the
operator as actor), its plan through billing, roles through the membership services, and the
audit log is read-only.
"""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages

from saas.common.actor import Actor

from . import services
from .models import AuditEvent, Membership, Organization, TenantManager


class TenantModelAdmin(admin.ModelAdmin):
    """Admin for tenant-owned models: the operator console sees every tenant (on purpose)."""

    def get_queryset(self, request):
        return self.model.objects.unscoped_all_tenants()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # A foreign key to another tenant-owned model (a usage row's API key, a job's dataset)
        # would build its choices with the fail-closed default manager and raise.
        manager = db_field.related_model._default_manager
        if isinstance(manager, TenantManager) and "queryset" not in kwargs:
            kwargs["queryset"] = manager.unscoped_all_tenants()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# The mixin is always combined with a ModelAdmin; the type checker sees it as one (for
# ``self.model`` and ``self.exclude``), at run time it stays a plain mixin.
if TYPE_CHECKING:
    _AdminBase = admin.ModelAdmin[Any]
else:
    _AdminBase = object


class ReadOnlyAdminMixin(_AdminBase):
    """No add, change or delete from the admin: rows are written by services only (the ledger,
    the audit log, job state). The change page still shows every field."""

    def get_readonly_fields(self, request, obj=None):
        return [
            f.name for f in self.model._meta.concrete_fields if f.name not in (self.exclude or ())
        ]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class MembershipInline(ReadOnlyAdminMixin, admin.TabularInline):
    # Read-only: role changes go through the membership services (owner rules, audit log).
    model = Membership
    extra = 0


def operator(request) -> Actor:
    """The signed-in operator, as the actor of an admin action."""
    return Actor.for_user(request, request.user)


@admin.register(Organization)
class OrganizationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Organisations: read-only fields; suspend or reactivate with the actions (audited).

    No add (sign-up and ``create_tenant`` create organisations, audited) and no delete (it
    would cascade into the usage ledger and invoices). The plan is billing's (the billing
    accounts' page shows it and changes it, audited).
    Actions need only the view permission, so they work while the change form is read-only.
    """

    list_display = ("slug", "name", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("slug", "name")
    fields = ("id", "slug", "name", "status", "created_at")
    inlines = [MembershipInline]
    actions = ["suspend", "reactivate"]

    @admin.action(description="Suspend (reads only: no upload, training or prediction)")
    def suspend(self, request, queryset) -> None:
        for org in queryset:
            services.organization_suspend(
                organization=org, actor=operator(request), reason="admin action"
            )
        self.message_user(
            request, f"{queryset.count()} organisation(s) suspended.", messages.SUCCESS
        )

    @admin.action(description="Reactivate")
    def reactivate(self, request, queryset) -> None:
        for org in queryset:
            services.organization_reactivate(
                organization=org, actor=operator(request), reason="admin action"
            )
        self.message_user(
            request, f"{queryset.count()} organisation(s) reactivated.", messages.SUCCESS
        )


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
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
