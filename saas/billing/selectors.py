"""Reads of billing data, tenant-scoped."""

from saas.common.errors import NotFound
from saas.tenancy.models import Organization

from .models import Invoice


def invoice_list(*, organization: Organization):
    """The organisation's invoices (a queryset; the view paginates it, newest first)."""
    return Invoice.objects.for_tenant(organization).select_related("organization", "contract")


def invoice_get(*, organization: Organization, invoice_id: str) -> Invoice:
    """One of the organisation's invoices. Raises ``NotFound`` if missing or another tenant's."""
    invoice = invoice_list(organization=organization).filter(pk=invoice_id).first()
    if invoice is None:
        raise NotFound(f"No invoice {invoice_id!r}.")
    return invoice
