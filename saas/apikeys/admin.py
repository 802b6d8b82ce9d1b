"""API keys in the operator admin: read-only, with a revoke action (audited, operator as actor)."""

from django.contrib import admin, messages

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin, operator

from .models import ApiKey
from .services import api_key_revoke


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
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
    actions = ["revoke"]

    @admin.action(description="Revoke (the next request with the key gets 401)")
    def revoke(self, request, queryset) -> None:
        for key in queryset:
            api_key_revoke(api_key=key, actor=operator(request))
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)
