"""API keys in the operator admin: read-only but for the monthly spend cap, which is saved
through ``api_key_spend_cap_set`` (audited, operator as actor); a revoke action likewise."""

from django import forms
from django.contrib import admin, messages

from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin, TenantModelForm, operator

from .models import ApiKey
from .services import api_key_revoke, api_key_spend_cap_set


class ApiKeyAdminForm(TenantModelForm):
    def clean_monthly_spend_cap(self):
        # The service refuses a negative cap too; here it is a form error, not a 500.
        cap = self.cleaned_data.get("monthly_spend_cap")
        if cap is not None and cap < 0:
            raise forms.ValidationError("A spend cap is an amount ≥ 0 (empty: no cap).")
        return cap


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    # Everything is read-only (the mixin) except the spend cap, the one operator setting.
    editable = ("monthly_spend_cap",)
    form = ApiKeyAdminForm

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

    def get_readonly_fields(self, request, obj=None):
        return [f for f in super().get_readonly_fields(request, obj) if f not in self.editable]

    def has_change_permission(self, request, obj=None) -> bool:
        return TenantModelAdmin.has_change_permission(self, request, obj)

    def save_model(self, request, obj, form, change) -> None:
        # Through the service (its checks and audit event), never a raw save of the row.
        api_key_spend_cap_set(
            api_key=obj, monthly_spend_cap=obj.monthly_spend_cap, actor=operator(request)
        )

    @admin.action(description="Revoke (requests with the key get 401 within 1 s)")
    def revoke(self, request, queryset) -> None:
        for key in queryset:
            api_key_revoke(api_key=key, actor=operator(request))
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)
