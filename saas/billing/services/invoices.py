"""Sending an invoice by email (PDF attached), audited as ``invoice.sent``."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction

from saas.common.actor import Actor
from saas.common.errors import ValidationFailed
from saas.tenancy.audit import audit_record
from saas.tenancy.models import Membership

from ..models import Invoice
from ..rendering import invoice_document, invoice_pdf


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


def invoice_send(*, invoice: Invoice, to: list[str] | None = None, actor: Actor) -> None:
    """Email the invoice with its PDF attached and record ``invoice.sent`` in the audit log.

    Args:
        invoice: the invoice to send.
        to: recipient addresses; None means :func:`invoice_recipients` (the contract's
            billing contact, else the organisation's owners). Duplicates are dropped.
        actor: who sent it (``Actor.system()`` for a task).

    Raises:
        ValidationFailed: ``to`` holds an invalid address, or there is nobody to send it to.
        Any error of the email backend (SMTP, …): the audit event is then not recorded.
    """
    recipients = invoice_recipients(invoice=invoice) if to is None else list(to)
    recipients = list(dict.fromkeys(r.strip() for r in recipients if r and r.strip()))
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
    doc = invoice_document(invoice=invoice)
    body = (
        f"Hello,\n\nPlease find attached invoice {doc.number} from {doc.issuer_name} for "
        f"{doc.bill_to_name}, covering {doc.period}.\n\n"
        f"Total: {doc.total}\nDue date: {doc.due_date}\n"
        + (f"PO number: {doc.po_number}\n" if doc.po_number else "")
        + f"\nThank you,\n{doc.issuer_name}\n"
    )
    message = EmailMessage(
        subject=f"Invoice {doc.number} from {doc.issuer_name}",
        body=body,
        to=recipients,
    )
    message.attach(f"{invoice.number}.pdf", invoice_pdf(invoice=invoice), "application/pdf")
    # The audit row rolls back if the email backend raises.
    with transaction.atomic():
        audit_record(
            organization_id=invoice.organization_id,
            action="invoice.sent",
            actor=actor,
            target_type="invoice",
            target_id=invoice.pk,
            to=recipients,
            number=invoice.number,
        )
        message.send()
