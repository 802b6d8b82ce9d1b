"""Operator admin for billing: plans, prices, the rate card, contracts, invoices, margins.

Invoices and their lines are read-only (they are issued by period close, changed only by
Stripe's events), and so are quota reservations and the stored Stripe events. The margins
report lives in the operator console (``/console/economics``); its old admin URL redirects. An account's plan changes through an admin action that calls
``billing_plan_change`` (audited), never by editing the field.
"""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from saas.common.actor import Actor
from saas.common.errors import DomainError
from saas.tenancy.admin import ReadOnlyAdminMixin, TenantModelAdmin

from .models import (
    BillingAccount,
    Contract,
    ContractPrice,
    CreditLedgerEntry,
    Invoice,
    InvoiceLine,
    Plan,
    PlanPrice,
    QuotaReservation,
    RateCard,
    StripeEvent,
)
from .services.accounts import billing_plan_change


class PlanPriceInline(admin.TabularInline):
    model = PlanPrice
    extra = 0


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    """Plans, their prices and their limits, editable: a plan is the one place its limits
    live, so an edit moves every organisation on it from the next request on."""

    list_display = (
        "code",
        "name",
        "monthly_fee",
        "currency",
        "hard_limits",
        "contract_based",
        "requests_per_key",
        "requests_per_organization",
        "max_running_jobs",
        "max_active_jobs",
        "max_classes",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "code",
                    "name",
                    "currency",
                    "monthly_fee",
                    "hard_limits",
                    "contract_based",
                    "stripe_price_id",
                )
            },
        ),
        (
            "Limits",
            {
                "description": "Requests are per rate-limit window "
                "(TRAINYARD_RATE_LIMIT_WINDOW_SECONDS); jobs are training jobs; classes are per "
                "uploaded dataset.",
                "fields": (
                    "requests_per_key",
                    "requests_per_organization",
                    "max_running_jobs",
                    "max_active_jobs",
                    "max_classes",
                ),
            },
        ),
    )
    inlines = [PlanPriceInline]

    def get_urls(self):
        # The old margins report moved to the console's unit economics page; the URL and its
        # name stay so that bookmarks and ``reverse("admin:billing_margins")`` still work.
        return [
            path("margins/", self.admin_site.admin_view(self.margins_view), name="billing_margins"),
            *super().get_urls(),
        ]

    def margins_view(self, request):
        """302 to ``/console/economics``, passing ``?month=YYYY-MM`` on when given."""
        url = reverse("console:economics")
        month = request.GET.get("month")
        if month:
            url += "?" + urlencode({"month": month})
        return redirect(url)


@admin.register(RateCard)
class RateCardAdmin(admin.ModelAdmin):
    list_display = ("effective_from", "currency", "cpu_second_cost", "gpu_second_cost")


def _plan_action(code: str, name: str):
    """An admin action moving the selected accounts' organisations to plan ``code``."""

    def action(modeladmin, request, queryset):
        actor = Actor.for_user(request, request.user)
        for account in queryset.select_related("organization"):
            try:
                billing_plan_change(organization=account.organization, plan_code=code, actor=actor)
            except DomainError as exc:
                modeladmin.message_user(request, exc.detail, messages.ERROR)
                return
        modeladmin.message_user(request, f"Moved {queryset.count()} account(s) to {name}.")

    action.__name__ = f"move_to_plan_{code}"
    return action, action.__name__, f"Move to the {name} plan (audited)"


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
    # View-only: everything changes through services, each audited: the plan by the actions
    # below, the spend cap in the customer's dashboard, the Stripe state by webhooks. Listing
    # the fields keeps Django from building a form (whose FK querysets would be unscoped).
    fields = readonly_fields = (
        "organization",
        "plan",
        "status",
        "monthly_spend_cap",
        "stripe_customer_id",
        "stripe_subscription_id",
        "past_due_since",
        "stripe_updated_at",
        "warned",
    )

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False  # accounts are created with their organisation

    def get_actions(self, request):
        actions = super().get_actions(request)
        # The actions need the model's change permission, which the form itself never gets.
        if request.user.has_perm("billing.change_billingaccount"):
            for plan in Plan.objects.order_by("monthly_fee", "code"):
                fn, name, label = _plan_action(plan.code, plan.name)
                actions[name] = (fn, name, label)
        return actions


@admin.register(Contract)
class ContractAdmin(TenantModelAdmin):
    """Contracts: negotiated terms an operator types in (no service writes them), so they stay
    editable here, every save and delete audited by :class:`TenantModelAdmin`.

    The prices are listed on the contract's page and edited on their own pages
    (:class:`ContractPriceAdmin`): an inline formset would look them up through the fail-closed
    manager. The organisation is fixed once the contract exists, so its prices, which carry
    the same organisation, cannot end up with another tenant's contract.
    """

    list_display = (
        "id",
        "organization",
        "starts_on",
        "ends_on",
        "committed_monthly_minimum",
        "prepaid_credit_balance",
    )
    readonly_fields = ("prices",)

    def get_readonly_fields(self, request, obj=None):
        return ("organization", "prices") if obj is not None else ("prices",)

    @admin.display(description="Prices")
    def prices(self, obj: Contract) -> str:
        """The contract's prices per meter, each linking to its change page, and an add link."""
        if obj.pk is None:
            return "Save the contract first, then add its prices."
        rows = ContractPrice.objects.for_tenant(obj.organization_id).filter(contract=obj)
        body = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td></tr>',
            (
                (reverse("admin:billing_contractprice_change", args=[p.pk]), p.meter, p.unit_price)
                for p in rows.order_by("meter")
            ),
        )
        add = reverse("admin:billing_contractprice_add") + f"?contract={obj.pk}"
        head = format_html("<tr><th>Meter</th><th>Unit price</th></tr>")
        return format_html('<table>{}{}</table><a href="{}">Add a price</a>', head, body, add)


@admin.register(ContractPrice)
class ContractPriceAdmin(TenantModelAdmin):
    """A contract's price for one meter: editable, audited (:class:`TenantModelAdmin`). Its
    organisation is always its contract's."""

    list_display = ("contract", "organization", "meter", "unit_price")
    list_filter = ("meter",)
    exclude = ("organization",)

    def save_model(self, request, obj, form, change) -> None:
        obj.organization_id = obj.contract.organization_id
        super().save_model(request, obj, form, change)


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

    # Read-only: an invoice is issued by period close and marked paid by Stripe's events.
    # Listing the fields keeps Django from building a form (its FK querysets are unscoped).
    fields = readonly_fields = (
        "number",
        "organization",
        "status",
        "period_start",
        "period_end",
        "currency",
        "plan_code",
        "contract",
        "po_number",
        "subtotal",
        "credit_applied",
        "tax_rate",
        "tax",
        "total",
        "compute_cost",
        "issued_at",
        "due_on",
        "paid_at",
        "stripe_invoice_id",
        "stripe_push_attempts",
        "stripe_next_attempt_at",
        "stripe_last_error",
        "lines",
    )

    @admin.display(description="Lines")
    def lines(self, obj: Invoice) -> str:
        """The invoice's lines as a read-only table (no inline formset: its pk field would
        query the fail-closed manager unscoped)."""
        rows = InvoiceLine.objects.for_tenant(obj.organization_id).filter(invoice=obj)
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (ln.position, ln.kind, ln.description, ln.quantity, ln.unit_price, ln.amount)
                for ln in rows.order_by("position")
            ),
        )
        head = format_html(
            "<tr><th>#</th><th>Kind</th><th>Description</th><th>Quantity</th>"
            "<th>Unit price</th><th>Amount</th></tr>"
        )
        return format_html("<table>{}{}</table>", head, body)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CreditLedgerEntry)
class CreditLedgerEntryAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    """The credit ledger: read-only (append-only; grants are made in the console through
    ``billing_credit_grant``, drawdowns by period close)."""

    list_display = ("id", "organization", "kind", "amount", "currency", "invoice", "created_at")
    list_filter = ("kind",)


@admin.register(QuotaReservation)
class QuotaReservationAdmin(TenantModelAdmin):
    """Read-only: what accepted jobs hold against the quotas and spend caps (written at
    submission, released when the job ends, by the services only)."""

    list_display = ("source_id", "organization", "amount", "created_at", "released_at")
    list_filter = (("released_at", admin.EmptyFieldListFilter),)
    fields = readonly_fields = (
        "organization",
        "source_type",
        "source_id",
        "quantities",
        "amount",
        "created_at",
        "released_at",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(InvoiceLine)
class InvoiceLineAdmin(ReadOnlyAdminMixin, TenantModelAdmin):
    """Read-only: lines are written with their invoice by period close (a credit drawdown is
    one of them) and never changed afterwards."""

    list_display = (
        "invoice",
        "organization",
        "position",
        "kind",
        "meter",
        "description",
        "quantity",
        "unit_price",
        "amount",
    )
    list_filter = ("kind",)


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: Stripe's webhook events as received (raw data for an operator looking into a
    payment); they are stored once and applied by the webhook handler only."""

    list_display = ("event_id", "type", "created", "received_at", "processed_at")
    list_filter = ("type",)
    search_fields = ("event_id",)
