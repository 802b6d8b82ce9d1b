"""Plans, the rate card, billing accounts, B2B contracts, invoices and Stripe events.

Money is ``Decimal`` with a currency, never float. Unit prices keep 6 decimal places (a
prediction can cost a fraction of a cent); invoice amounts are rounded once per line, half-up,
to the currency's minor unit.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TypedDict

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from saas.common.ids import IdFactory
from saas.metering.models import Meter
from saas.tenancy.models import Organization, TenantManager, TenantModel, TenantQuerySet


class _MoneyField(TypedDict):
    max_digits: int
    decimal_places: int


# Typed so that ``DecimalField(**MONEY)`` type-checks against the field's keyword arguments.
MONEY: _MoneyField = {"max_digits": 14, "decimal_places": 2}
UNIT_PRICE: _MoneyField = {"max_digits": 16, "decimal_places": 8}


class Plan(models.Model):
    """A self-serve plan (data, seeded by a migration, editable in the admin).

    ``hard_limits``: quotas are hard caps (a request over them is a 402) rather than included
    units followed by paid overage.

    The plan's limits (the one place they live; an edit reaches every web process within
    ``TRAINYARD_REQUEST_CACHE_SECONDS``, ≤ 1 s, and job admission at once):
    ``requests_per_key`` and ``requests_per_organization`` are requests per rate-limit window
    (``TRAINYARD_RATE_LIMIT_WINDOW_SECONDS``) per API key or signed-in user, and per
    organisation; ``predictions_per_key`` and ``predictions_per_organization`` are prediction
    inputs per window (the data plane weighs a request by its number of inputs);
    ``max_running_jobs`` is how many training jobs run at once,
    ``max_active_jobs`` how many may be queued or running; ``max_classes`` how many classes
    an uploaded dataset may have (checked at upload, a 422 naming the limit and the count: a
    model's size, its training time and its confusion matrix grow with it, the matrix with its
    square). Defaults are the free plan's.
    """

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    currency = models.CharField(max_length=3, default="usd")
    monthly_fee = models.DecimalField(**MONEY, default=0)
    hard_limits = models.BooleanField(default=False)
    contract_based = models.BooleanField(default=False)
    stripe_price_id = models.CharField(max_length=100, blank=True, default="")
    requests_per_key = models.PositiveIntegerField(
        default=120, validators=[MinValueValidator(1)], help_text="per rate-limit window"
    )
    requests_per_organization = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1)], help_text="per rate-limit window"
    )
    predictions_per_key = models.PositiveIntegerField(
        default=600, validators=[MinValueValidator(1)], help_text="inputs per rate-limit window"
    )
    predictions_per_organization = models.PositiveIntegerField(
        default=1200, validators=[MinValueValidator(1)], help_text="inputs per rate-limit window"
    )
    max_running_jobs = models.PositiveIntegerField(default=1)
    max_active_jobs = models.PositiveIntegerField(default=10, help_text="queued or running")
    max_classes = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(2)],
        help_text="classes per uploaded dataset (a classifier needs at least 2)",
    )

    class Meta:
        constraints = [
            # A bucket of size 0 would never refill (the limiter divides by its size).
            models.CheckConstraint(
                condition=models.Q(requests_per_key__gte=1, requests_per_organization__gte=1),
                name="plan_rate_limits_positive",
            )
        ]

    def __str__(self) -> str:
        return self.code


class PlanPrice(models.Model):
    """What a plan includes and charges for one meter, from ``effective_from`` on.

    ``included_units`` per month are free; beyond them each unit costs ``unit_price`` or, when
    the plan has hard limits, is refused (``included_units`` is then the quota).
    """

    plan = models.ForeignKey(Plan, on_delete=models.CASCADE, related_name="prices")
    meter = models.CharField(max_length=64, choices=Meter.choices)
    effective_from = models.DateField()
    included_units = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    unit_price = models.DecimalField(**UNIT_PRICE, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["plan", "meter", "effective_from"], name="uniq_plan_price"
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan.code}:{self.meter}@{self.effective_from}"


class RateCard(models.Model):
    """What compute costs the operator, from ``effective_from`` on (versioned by date)."""

    effective_from = models.DateField(unique=True)
    currency = models.CharField(max_length=3, default="usd")
    cpu_second_cost = models.DecimalField(**UNIT_PRICE)
    gpu_second_cost = models.DecimalField(**UNIT_PRICE)
    # Object storage per GB (10^9 bytes) held for an hour: $0.023 per GB-month (S3 Standard's
    # list price) over the 730 hours of an average month.
    storage_gb_hour_cost = models.DecimalField(**UNIT_PRICE, default=Decimal("0.0000315"))

    def __str__(self) -> str:
        return f"rate card {self.effective_from}"


class BillingAccount(TenantModel):
    """An organisation's billing state: its plan, spend cap, Stripe ids and payment status."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        PAST_DUE = "past_due"
        CANCELED = "canceled"

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    monthly_spend_cap = models.DecimalField(**MONEY, null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=100, blank=True, default="")
    stripe_subscription_id = models.CharField(max_length=100, blank=True, default="")
    past_due_since = models.DateTimeField(null=True, blank=True)
    stripe_updated_at = models.IntegerField(
        null=True, blank=True
    )  # Stripe's event.created of the last applied change
    warned = models.JSONField(default=dict, blank=True)  # {"YYYY-MM:meter:80": true} warnings sent

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="uniq_billing_account")
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} on {self.plan_id}"


class QuotaReservation(TenantModel):
    """Units and money held for accepted work not billed yet (a queued or running job).

    Job submission reserves the job's estimate (``quantities``: ``{meter: "units"}``, and
    ``amount``: its expected charge beyond the included units, in the plan's currency) under
    the billing account's row lock, so the quotas and spend caps count work already accepted,
    not only work billed; the job's end (any terminal status) releases it (``released_at``),
    in the transaction that writes its usage events. One per source (``training_job`` id).
    """

    source_type = models.CharField(max_length=32)
    source_id = models.CharField(max_length=64)
    quantities = models.JSONField(default=dict)
    amount = models.DecimalField(**MONEY, default=0)
    api_key = models.ForeignKey(
        "apikeys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source_type", "source_id"], name="uniq_quota_reservation"
            )
        ]
        indexes = [
            models.Index(
                fields=["organization"],
                condition=models.Q(released_at__isnull=True),
                name="quota_reservation_active",
            )
        ]

    def __str__(self) -> str:
        return f"{self.source_type}:{self.source_id}"


class Contract(TenantModel):
    """A B2B contract: negotiated prices, a committed monthly minimum, prepaid credits, terms."""

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("ctr"), editable=False)
    starts_on = models.DateField()
    ends_on = models.DateField()
    currency = models.CharField(max_length=3, default="usd")
    committed_monthly_minimum = models.DecimalField(**MONEY, default=0)
    prepaid_credit_balance = models.DecimalField(**MONEY, default=0)
    payment_terms_days = models.PositiveSmallIntegerField(
        choices=[(30, "net 30"), (45, "net 45"), (60, "net 60")], default=30
    )
    po_number = models.CharField(max_length=100, blank=True, default="")
    billing_contact = models.EmailField(blank=True, default="")
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4, default=0)  # 0.2000 = 20 %

    def __str__(self) -> str:
        return f"{self.id} ({self.organization_id})"


class ContractPrice(TenantModel):
    """A contract's price for one meter, overriding the plan's (no included units)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="prices")
    meter = models.CharField(max_length=64, choices=Meter.choices)
    unit_price = models.DecimalField(**UNIT_PRICE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contract", "meter"], name="uniq_contract_price")
        ]

    def __str__(self) -> str:
        return f"{self.contract_id}:{self.meter}"


class InvoiceNumberSequence(models.Model):
    """Sequential invoice numbers per issuer (locked with SELECT … FOR UPDATE)."""

    issuer = models.CharField(max_length=32, unique=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.issuer}: {self.last_number}"


class Invoice(TenantModel):
    """One organisation's invoice for one billing period. Period close creates it once."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        OPEN = "open"
        PAID = "paid"
        VOID = "void"

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("inv"), editable=False)
    number = models.CharField(max_length=32, unique=True)
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    contract = models.ForeignKey(
        Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    plan_code = models.CharField(max_length=32, blank=True, default="")
    subtotal = models.DecimalField(**MONEY)
    credit_applied = models.DecimalField(**MONEY, default=0)
    tax_rate = models.DecimalField(max_digits=6, decimal_places=4, default=0)
    tax = models.DecimalField(**MONEY, default=0)
    total = models.DecimalField(**MONEY)
    compute_cost = models.DecimalField(
        **MONEY, default=0
    )  # what the period's usage cost the operator
    issued_at = models.DateTimeField(auto_now_add=True)
    due_on = models.DateField()
    po_number = models.CharField(max_length=100, blank=True, default="")
    stripe_invoice_id = models.CharField(max_length=100, blank=True, default="")
    # The push to Stripe is retried with exponential backoff until it succeeds
    # (``services.stripe_push``): attempts made, when the next is due (None once pushed or
    # when there is nothing to push), and the last failure, for the operator.
    stripe_push_attempts = models.PositiveIntegerField(default=0)
    stripe_next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    stripe_last_error = models.CharField(max_length=300, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start"], name="uniq_invoice_period"
            )
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(TenantModel):
    """One line: a subscription fee, a meter's usage, a credit drawdown, a true-up or tax."""

    class Kind(models.TextChoices):
        SUBSCRIPTION = "subscription"
        USAGE = "usage"
        TRUE_UP = "true_up"
        CREDIT = "credit"

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("il"), editable=False)
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    meter = models.CharField(max_length=64, blank=True, default="")
    description = models.CharField(max_length=300)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit_price = models.DecimalField(**UNIT_PRICE)
    amount = models.DecimalField(**MONEY)
    stripe_invoice_item_id = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.invoice_id}#{self.position}"


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete a row of an append-only ledger."""


class CreditLedgerQuerySet(TenantQuerySet["CreditLedgerEntry"]):
    """The ledger's rows: queries and inserts only; ``update()`` and ``delete()`` raise."""

    def update(self, **kwargs) -> int:
        raise AppendOnlyError("The credit ledger is append-only; record a new entry instead.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The credit ledger is append-only; record a new entry instead.")


class CreditLedgerManager(TenantManager["CreditLedgerEntry"]):
    """:class:`TenantManager` (fail closed) whose querysets are :class:`CreditLedgerQuerySet`."""

    def for_tenant(self, organization: Organization | str) -> CreditLedgerQuerySet:
        qs = super().for_tenant(organization)
        return CreditLedgerQuerySet(self.model, query=qs.query, using=self._db)

    def unscoped_all_tenants(self) -> CreditLedgerQuerySet:
        return CreditLedgerQuerySet(self.model, using=self._db)


class CreditLedgerEntry(TenantModel):
    """One movement of an organisation's credit: a ``grant`` (an operator's, positive, with a
    reason), a ``reversal`` (an operator taking unused credit back, negative, with a reason)
    or a ``drawdown`` (period close applying it to an invoice, negative, linked to that
    invoice). The balance is the sum of ``amount`` per currency
    (``saas.billing.selectors.credit_balance``).

    Append-only, like the usage ledger: a row is never edited or deleted (``save()`` of an
    existing row, ``delete()`` and the queryset's ``update()``/``delete()`` raise
    :class:`AppendOnlyError`); a mistake is corrected by a new entry. The database holds the
    signs and the one drawdown per invoice (so a re-run of period close cannot draw twice).
    Contract tenants' prepaid money stays on ``Contract.prepaid_credit_balance``.
    """

    class Kind(models.TextChoices):
        GRANT = "grant"
        REVERSAL = "reversal"
        DRAWDOWN = "drawdown"

    id = models.CharField(primary_key=True, max_length=32, default=IdFactory("crd"), editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=500, blank=True, default="")
    # PROTECT: an invoice that drew credit cannot go while its drawdown explains the balance.
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = CreditLedgerManager()  # type: ignore[misc]  # the TenantManager, narrowed

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="grant", amount__gt=0, invoice__isnull=True)
                    & ~models.Q(reason="")
                )
                | (
                    models.Q(kind="reversal", amount__lt=0, invoice__isnull=True)
                    & ~models.Q(reason="")
                )
                | models.Q(kind="drawdown", amount__lt=0, invoice__isnull=False),
                name="credit_ledger_entry_kind_sign",
            ),
            models.UniqueConstraint(
                fields=["invoice"],
                condition=models.Q(kind="drawdown"),
                name="uniq_credit_drawdown_per_invoice",
            ),
        ]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError("A credit ledger entry is never changed; record a new entry.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("A credit ledger entry is never deleted; record a new entry.")

    def __str__(self) -> str:
        return f"{self.id} {self.kind} {self.amount} {self.currency}"


class StripeEvent(models.Model):
    """A Stripe webhook event, stored once (a duplicate delivery is a no-op)."""

    event_id = models.CharField(max_length=100, unique=True)
    type = models.CharField(max_length=100)
    created = models.IntegerField()  # Stripe's timestamp (seconds)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.event_id
