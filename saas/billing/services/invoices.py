"""Sending an invoice by email (PDF attached), audited as ``invoice.sent``.

Only to the organisation's own people: its members and its contracts' billing contacts. The
endpoint would otherwise relay tenant-controlled text (names, PO numbers) to any address
under Trainyard's sender. Each recipient gets their own message, so one address the mail
server refuses does not stop the others; the caller gets a result per recipient.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import DomainError, ValidationFailed
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Membership

from ..models import Contract, Invoice
from ..rendering import invoice_document, invoice_pdf

log = logging.getLogger(__name__)


class RecipientNotAllowed(DomainError):
    """An address is neither a member of the organisation nor one of its billing contacts."""

    status = 422
    code = "recipient-not-allowed"
    title = "Invoices go only to the organisation's members and billing contacts"


class InvoiceUndeliverable(DomainError):
    """The email backend refused every recipient (nothing was sent, nothing audited)."""

    status = 503
    code = "email-unavailable"
    title = "The invoice could not be emailed"


@dataclass(frozen=True)
class SendReport:
    """What happened to each recipient of one send.

    Attributes:
        sent: the addresses the email backend accepted, in request order.
        failed: ``{address: reason}`` for those it refused (the reason is the exception's
            class name: never the backend's message, which may echo server internals).
    """

    sent: list[str]
    failed: dict[str, str] = field(default_factory=dict)

    def results(self) -> list[dict[str, str]]:
        """One ``{"email", "status": "sent" | "failed", "error"?}`` per recipient."""
        out = [{"email": a, "status": "sent"} for a in self.sent]
        out += [{"email": a, "status": "failed", "error": e} for a, e in self.failed.items()]
        return out


def invoice_allowed_recipients(*, organization_id: str) -> set[str]:
    """Lower-cased addresses an invoice of the organisation may be sent to: every member's
    email and every contract's billing contact (two queries)."""
    members = Membership.objects.filter(organization_id=organization_id).values_list(
        "user__email", flat=True
    )
    contacts = (
        Contract.objects.for_tenant(organization_id)
        .exclude(billing_contact="")
        .values_list("billing_contact", flat=True)
    )
    return {a.strip().lower() for a in [*members, *contacts] if a and a.strip()}


def invoice_recipients(*, invoice: Invoice) -> list[str]:
    """Default recipients: the contract's billing contact, else the organisation's owners."""
    contract = invoice.contract  # None without a query when contract_id is None
    if contract is not None and contract.billing_contact:
        return [contract.billing_contact]
    return list(
        Membership.objects.filter(
            organization_id=invoice.organization_id, role=Membership.Role.OWNER
        )
        .order_by("created_at", "pk")
        .values_list("user__email", flat=True)
    )


def invoice_send(*, invoice: Invoice, to: list[str] | None = None, actor: Actor) -> SendReport:
    """Email the invoice with its PDF attached, one message per recipient, and record
    ``invoice.sent`` (the addresses reached and those refused) in the audit log.

    Args:
        invoice: the invoice to send.
        to: recipient addresses; None means :func:`invoice_recipients` (the contract's
            billing contact, else the organisation's owners). Duplicates are dropped (in any
            letter case); each must be in :func:`invoice_allowed_recipients`.
        actor: who sent it (``Actor.system()`` for a task).

    Returns:
        a :class:`SendReport`: the addresses sent to, and those the backend refused.

    Raises:
        ValidationFailed (400): ``to`` holds an invalid address, or there is nobody to send to.
        RecipientNotAllowed (422): an address is not a member's nor a billing contact; the
            errors name each one, and nothing is sent.
        InvoiceUndeliverable (503): the backend refused every recipient (nothing audited).
    """
    recipients = invoice_recipients(invoice=invoice) if to is None else list(to)
    seen: set[str] = set()
    unique: list[str] = []
    for r in recipients:
        r = (r or "").strip()
        if r and r.lower() not in seen:
            seen.add(r.lower())
            unique.append(r)
    recipients = unique
    errors = []
    for i, address in enumerate(recipients):
        try:
            validate_email(address)
        except DjangoValidationError:
            errors.append({"field": f"to[{i}]", "message": "not a valid email address"})
    if errors:
        raise ValidationFailed("Invalid recipients.", errors=errors)
    if not recipients:
        raise ValidationFailed(
            "Nobody to send the invoice to.",
            errors=[
                {
                    "field": "to",
                    "message": "give at least one address (the contract has no billing contact)",
                }
            ],
        )
    allowed = invoice_allowed_recipients(organization_id=invoice.organization_id)
    refused = [(i, a) for i, a in enumerate(recipients) if a.lower() not in allowed]
    if refused:
        raise RecipientNotAllowed(
            "Invoices are sent only to members and billing contacts; not to "
            + ", ".join(a for _, a in refused)
            + ".",
            errors=[
                {
                    "field": f"to[{i}]",
                    "message": f"{a} is not a member of this organisation nor a billing contact",
                }
                for i, a in refused
            ],
        )
    doc = invoice_document(invoice=invoice)
    body = (
        f"Hello,\n\nPlease find attached invoice {doc.number} from {doc.issuer_name} for "
        f"{doc.bill_to_name}, covering {doc.period}.\n\n"
        f"Total: {doc.total}\nDue date: {doc.due_date}\n"
        + (f"PO number: {doc.po_number}\n" if doc.po_number else "")
        + f"\nThank you,\n{doc.issuer_name}\n"
    )
    pdf = invoice_pdf(invoice=invoice)
    sent: list[str] = []
    failed: dict[str, str] = {}
    for address in recipients:
        message = EmailMessage(
            subject=f"Invoice {doc.number} from {doc.issuer_name}", body=body, to=[address]
        )
        message.attach(f"{invoice.number}.pdf", pdf, "application/pdf")
        try:
            message.send()
        except Exception as exc:  # any backend failure (SMTP refusal, DNS, TLS): report it
            # Why broad: the backend is pluggable and its errors are not one hierarchy; the
            # point is that the next recipient still gets theirs.
            log.warning("invoice %s: email to one recipient failed: %s", invoice.pk, type(exc))
            failed[address] = type(exc).__name__
        else:
            sent.append(address)
    if not sent:
        raise InvoiceUndeliverable(
            "The email server refused every recipient; nothing was sent. Retry later.",
            errors=[{"field": "to", "message": f"{a}: {e}"} for a, e in failed.items()],
        )
    with transaction.atomic():
        audit_record(
            organization_id=invoice.organization_id,
            action="invoice.sent",
            actor=actor,
            target_type="invoice",
            target_id=invoice.pk,
            to=sent,
            failed=sorted(failed),
            number=invoice.number,
        )
    return SendReport(sent=sent, failed=failed)
