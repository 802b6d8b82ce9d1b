"""Closing a billing period: one invoice per organisation and month, numbered, pushed to Stripe."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from saas.common.actor import Actor
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Organization

from .. import pricing
from ..models import Contract, CreditLedgerEntry, Invoice, InvoiceLine, InvoiceNumberSequence
from ..selectors import credit_balance, period_charges, usage_compute_cost, usage_totals
from .accounts import billing_account_ensure
from .stripe_push import invoice_stripe_push

log = logging.getLogger(__name__)
ISSUER = "TY"


def _next_number() -> str:
    seq, _ = InvoiceNumberSequence.objects.select_for_update().get_or_create(issuer=ISSUER)
    seq.last_number += 1
    InvoiceNumberSequence.objects.filter(pk=seq.pk).update(last_number=seq.last_number)
    return f"{ISSUER}-{seq.last_number:06d}"


def period_close(
    *, organization: Organization, period_start: datetime.date, actor: Actor
) -> Invoice:
    """Close ``organization``'s month starting ``period_start``: build its invoice, exactly once.

    Running it again returns the existing invoice (unique per organisation and period). The
    credit it may apply is the active contract's prepaid balance plus the credit ledger's
    balance in the invoice's currency; in the same transaction it draws the contract's balance
    down first and the rest as one ledger ``drawdown`` linked to the invoice (see
    :func:`_split_credit` for the order), and
    records ``invoice.issued`` for ``actor`` (``Actor.system()`` when Celery beat or an
    operator's command closes the month). Numbers are sequential
    per issuer. Pushes the invoice to Stripe after commit when Stripe is configured (SaaS plans
    only; contract invoices are sent on terms); a failed push is retried with backoff until it
    succeeds (:mod:`.stripe_push`).
    """
    start, end = pricing.month_bounds(period_start)
    existing = Invoice.objects.for_tenant(organization).filter(period_start=start).first()
    if existing:
        if existing.stripe_next_attempt_at is not None:
            # A push that failed earlier is tried again if its backoff has passed (the beat
            # task stripe_push_retry does this every few minutes anyway).
            invoice_stripe_push(organization_id=organization.pk, invoice_id=existing.pk)
        return existing
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=organization.pk)
        existing = Invoice.objects.for_tenant(organization).filter(period_start=start).first()
        if existing:
            return existing
        account = billing_account_ensure(organization=organization, actor=actor)
        contract = pricing.contract_active(organization_id=organization.pk, on=start)
        if contract is not None:
            contract = (
                Contract.objects.for_tenant(organization).select_for_update().get(pk=contract.pk)
            )
        currency = contract.currency if contract else account.plan.currency
        # Read under the organisation's lock, which every drawdown and grant takes too: the
        # balance cannot move before this invoice's drawdown is written.
        ledger = credit_balance(organization=organization, currency=currency)
        computed = period_charges(
            organization=organization, start=start, end=end, ledger_credit=ledger
        )
        prepaid_draw, ledger_draw = _split_credit(
            computed.credit_applied,
            prepaid=contract.prepaid_credit_balance if contract else Decimal(0),
            ledger=ledger,
        )
        # Pushed when there is anything to collect, or a credit Stripe must hear of: a credit
        # that covers the plan fee, which a Stripe subscription bills by itself, becomes a
        # negative Stripe invoice, i.e. customer balance Stripe takes off the next one.
        push = contract is None and (computed.total > 0 or computed.credit_applied > 0)
        terms = contract.payment_terms_days if contract else 0
        totals = usage_totals(organization_id=organization.pk, start=start, end=end)
        cost = usage_compute_cost(organization_id=organization.pk, start=start, end=end)
        invoice = Invoice.objects.for_tenant(organization).create(
            organization=organization,
            number=_next_number(),
            period_start=start,
            period_end=end,
            currency=currency,
            contract=contract,
            plan_code=account.plan.code,
            subtotal=computed.subtotal,
            credit_applied=computed.credit_applied,
            tax_rate=contract.tax_rate if contract else Decimal(0),
            tax=computed.tax,
            total=computed.total,
            compute_cost=pricing.round_money(cost, currency),
            due_on=end + datetime.timedelta(days=terms),
            po_number=contract.po_number if contract else "",
            # Due for its Stripe push at once; kept due (with backoff) until a push succeeds.
            stripe_next_attempt_at=timezone.now() if push else None,
        )
        InvoiceLine.objects.for_tenant(organization).bulk_create(
            [
                InvoiceLine(
                    organization=organization,
                    invoice=invoice,
                    position=i,
                    kind=ln.kind,
                    meter=ln.meter,
                    description=ln.description,
                    quantity=ln.quantity,
                    unit_price=ln.unit_price,
                    amount=ln.amount,
                )
                for i, ln in enumerate(computed.lines, start=1)
            ]
        )
        if contract is not None and prepaid_draw:
            Contract.objects.for_tenant(organization).filter(pk=contract.pk).update(
                prepaid_credit_balance=F("prepaid_credit_balance") - prepaid_draw
            )
        if ledger_draw:
            # One drawdown per invoice (a unique constraint): with the invoice's own
            # uniqueness per period, a re-run can never draw twice.
            CreditLedgerEntry.objects.for_tenant(organization).create(
                organization=organization,
                kind=CreditLedgerEntry.Kind.DRAWDOWN,
                amount=-ledger_draw,
                currency=currency,
                invoice=invoice,
            )
        audit_record(
            organization_id=organization.pk,
            action="invoice.issued",
            actor=actor,
            target_type="invoice",
            target_id=invoice.pk,
            number=invoice.number,
            total=str(invoice.total),
            currency=currency,
            credit_applied=str(invoice.credit_applied),
            prepaid_credit_drawn=str(prepaid_draw),
            ledger_credit_drawn=str(ledger_draw),
        )
        log.info(
            "invoice %s for %s %s: total %s %s (usage %s)",
            invoice.number,
            organization.slug,
            start,
            invoice.total,
            currency,
            {k: str(v) for k, v in totals.items()},
        )
        if push:
            transaction.on_commit(
                lambda: invoice_stripe_push(organization_id=organization.pk, invoice_id=invoice.pk)
            )
    return invoice


def _split_credit(
    applied: Decimal, *, prepaid: Decimal, ledger: Decimal
) -> tuple[Decimal, Decimal]:
    """Split the credit an invoice applied into (from the contract's prepaid balance, from the
    credit ledger); the two add up to ``applied`` (≤ prepaid + ledger), neither exceeds its
    source.

    The prepaid balance is drawn first. It lives on one contract and is usable only while that
    contract is active (``pricing.contract_active`` picks the contract an invoice draws
    from; a balance left when the contract ends is never applied again), whereas ledger credit
    does not expire and follows the organisation onto its next contract or plan. Drawing the
    credit that expires first leaves the least stranded; ledger first would use up the lasting
    credit while the expiring one waits.
    """
    prepaid_draw = min(max(prepaid, Decimal(0)), applied)
    return prepaid_draw, applied - prepaid_draw


def period_close_all(*, period_start: datetime.date, actor: Actor) -> list[str]:
    """Close the period for every organisation (Celery beat, on the 1st). Idempotent; one
    organisation's failure is logged and does not stop the others. Returns invoice numbers."""
    numbers = []
    for org in Organization.objects.all().order_by("created_at"):
        try:
            numbers.append(
                period_close(organization=org, period_start=period_start, actor=actor).number
            )
        except Exception:  # one organisation's problem must not stop everyone else's invoice
            log.exception(
                "closing %s for %s failed; it will be retried on the next run",
                period_start,
                org.slug,
            )
    return numbers


def period_close_previous_month(*, actor: Actor, today: datetime.date | None = None) -> list[str]:
    """Close last month for everyone (Celery beat on the 1st; safe to run any day, twice)."""
    today = today or timezone.now().date()
    first_of_this = today.replace(day=1)
    previous = (first_of_this - datetime.timedelta(days=1)).replace(day=1)
    return period_close_all(period_start=previous, actor=actor)
