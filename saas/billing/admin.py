"""Operator console for billing: plans, prices, the rate card, contracts, invoices, margins."""

import datetime

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from saas.tenancy.admin import TenantModelAdmin

from .models import (
    BillingAccount,
    Contract,
    ContractPrice,
    Invoice,
    InvoiceLine,
    Plan,
    PlanPrice,
    RateCard,
)
from .services import margins


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "monthly_fee", "currency", "hard_limits", "contract_based")
    inlines = [PlanPriceInline]

    def get_urls(self):
        return [
            path("margins/", self.admin_site.admin_view(self.margins_view), name="billing_margins"),
            *super().get_urls(),
        ]

    def margins_view(self, request):
        """Unit economics per organisation for a month (``?month=2026-05``, default last month)."""
        raw = request.GET.get("month")
        if raw:
            start = datetime.date.fromisoformat(raw + "-01")
        else:
            start = (timezone.now().date().replace(day=1) - datetime.timedelta(days=1)).replace(
                day=1
            )
        rows = margins(start=start)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Margins, {start:%B %Y}",
            "rows": rows,
        }
        return TemplateResponse(request, "billing/margins.html", context)


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = ("effective_from", "currency", "cpu_second_cost", "gpu_second_cost")


@admin.register(BillingAccount)
class BillingAccountAdmin(TenantModelAdmin):
    list_display = (
        "organization",
        "plan",
        "status",
        "monthly_spend_cap",
        "stripe_customer_id",
        "past_due_since",
    )


class ContractPriceInline(admin.TabularInline):
    model = ContractPrice
    extra = 0
    exclude = ("organization",)


@admin.register(Contract)
class ContractAdmin(TenantModelAdmin):
    list_display = (
        "id",
        "organization",
        "starts_on",
        "ends_on",
        "committed_monthly_minimum",
        "prepaid_credit_balance",
    )
    inlines = [ContractPriceInline]

    def save_formset(self, request, form, formset, change):
        for obj in formset.save(commit=False):
            obj.organization_id = form.instance.organization_id
            obj.save()
        formset.save_m2m()


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 0
    can_delete = False
    readonly_fields = (
        "position",
        "kind",
        "meter",
        "description",
        "quantity",
        "unit_price",
        "amount",
    )
    exclude = ("organization", "stripe_invoice_item_id")

    def get_queryset(self, request):
        return InvoiceLine.objects.unscoped_all_tenants()


@admin.register(Invoice)
class InvoiceAdmin(TenantModelAdmin):
    list_display = (
        "number",
        "organization",
        "period_start",
        "total",
        "currency",
        "status",
        "due_on",
    )
    list_filter = ("status",)
    inlines = [InvoiceLineInline]
