"""``manage.py simulate_billing_month [--month 2026-05]``: two tenants, one month, two invoices.

Creates (or reuses) ``sim-pro`` on the pro plan and ``sim-enterprise`` on a contract, writes a
month of usage events into the ledger (daily training and predictions, deterministic), closes
the period and prints both invoices line by line. Running it twice prints the same invoices
(period close is idempotent). With ``STRIPE_API_KEY`` set the pro invoice is pushed to Stripe.
"""

import datetime
from decimal import Decimal as D

from django.core.management.base import BaseCommand
from django.utils import timezone

from saas.billing.economics import margins
from saas.billing.models import Contract, ContractPrice, InvoiceLine
from saas.billing.pricing import compute_cost, month_bounds
from saas.billing.services.period_close import period_close
from saas.common.actor import Actor
from saas.metering.models import Meter
from saas.metering.services import usage_record
from saas.tenancy.models import Organization
from saas.tenancy.services import organization_create

# per day: (training seconds, training examples, predictions)
PRO_DAY = (D("1500"), D("400000"), D("4000"))
ENT_DAY = (D("600"), D("100000"), D("2000"))


class Command(BaseCommand):
    help = "Simulate a month of usage for a pro and an enterprise tenant and close the period."

    def add_arguments(self, parser):
        parser.add_argument("--month", default="2026-05", help="YYYY-MM")

    def _org(self, slug: str, plan: str) -> Organization:
        org = Organization.objects.filter(slug=slug).first()
        if org is None:
            org = organization_create(
                slug=slug,
                name=slug.replace("-", " ").title(),
                owner_email=f"owner@{slug}.test",
                plan=plan,
                actor=Actor.system(),
            )
        return org

    def _usage(self, org: Organization, start: datetime.date, end: datetime.date, per_day) -> None:
        day = start
        while day < end:
            at = timezone.make_aware(
                datetime.datetime.combine(day, datetime.time(12)), datetime.UTC
            )
            for meter, qty in zip(
                (Meter.TRAINING_COMPUTE_SECONDS, Meter.TRAINING_EXAMPLES, Meter.PREDICTIONS),
                per_day,
                strict=True,
            ):
                cost = (
                    compute_cost(seconds=qty, device="cpu", day=day)
                    if meter == Meter.TRAINING_COMPUTE_SECONDS
                    else 0
                )
                usage_record(
                    organization_id=org.pk,
                    meter=meter,
                    quantity=qty,
                    occurred_at=at,
                    source_type="simulation",
                    source_id=f"{day}",
                    compute_cost=cost,
                )
            day += datetime.timedelta(days=1)

    def handle(self, *args, month, **options):
        start, end = month_bounds(datetime.date.fromisoformat(month + "-01"))
        pro = self._org("sim-pro", "pro")
        ent = self._org("sim-enterprise", "enterprise")
        if not Contract.objects.for_tenant(ent).exists():
            c = Contract.objects.for_tenant(ent).create(
                organization=ent,
                starts_on=start,
                ends_on=start.replace(year=start.year + 1),
                committed_monthly_minimum=D("100.00"),
                prepaid_credit_balance=D("50.00"),
                payment_terms_days=30,
                po_number="PO-SIM-1",
                billing_contact="ap@sim-enterprise.test",
                tax_rate=D("0.2000"),
            )
            ContractPrice.objects.for_tenant(ent).create(
                organization=ent, contract=c, meter=Meter.PREDICTIONS, unit_price=D("0.0003")
            )
        self._usage(pro, start, end, PRO_DAY)
        self._usage(ent, start, end, ENT_DAY)
        for org in (pro, ent):
            inv = period_close(organization=org, period_start=start, actor=Actor.system())
            self.stdout.write(
                f"\n{inv.number}  {org.slug}  {inv.period_start} – {inv.period_end}  due {inv.due_on}"
            )
            for ln in InvoiceLine.objects.for_tenant(org).filter(invoice=inv):
                self.stdout.write(
                    f"  {ln.description[:60]:<60} {ln.quantity.normalize():>14f} × "
                    f"{ln.unit_price.normalize():>10f} = {ln.amount:>10}"
                )
            self.stdout.write(
                f"  subtotal {inv.subtotal}  credit {inv.credit_applied}  tax {inv.tax}  "
                f"total {inv.total} {inv.currency.upper()}  (compute cost {inv.compute_cost})"
            )
        for row in margins(start=start):
            if row["organization"] in ("sim-pro", "sim-enterprise"):
                self.stdout.write(
                    f"margin {row['organization']}: revenue {row['revenue']} cost {row['compute_cost']} "
                    f"margin {row['gross_margin']} ({row['margin_pct']} %)"
                )
