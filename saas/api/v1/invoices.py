"""/v1 invoice endpoints: list, detail (with lines), HTML and PDF renderings, send by email.

Session only: ``invoices.read`` has no API-key scope, so a key gets 403. Another
organisation's invoice is a 404, the same as a missing one. Money is a decimal string.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from saas.billing import rendering
from saas.billing.selectors import invoice_get, invoice_list
from saas.billing.services.invoices import invoice_recipients, invoice_send
from saas.tenancy.permissions import Action

from ..base import PAGE_PARAMS, TenantAPIView, page_of


def _money(**kw) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True, **kw)


class InvoiceLineOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    position = serializers.IntegerField()
    kind = serializers.CharField()
    meter = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=20, decimal_places=6, coerce_to_string=True)
    unit_price = serializers.DecimalField(max_digits=16, decimal_places=8, coerce_to_string=True)
    amount = _money()

    def get_object(self, obj) -> str:
        return "invoice_line"


class InvoiceOut(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.SerializerMethodField()
    number = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField(help_text="exclusive")
    plan_code = serializers.CharField()
    contract = serializers.CharField(source="contract_id", allow_null=True)
    po_number = serializers.CharField()
    subtotal = _money()
    credit_applied = _money()
    tax_rate = serializers.DecimalField(
        max_digits=6, decimal_places=4, coerce_to_string=True, help_text="0.2000 = 20 %"
    )
    tax = _money()
    total = _money()
    issued_at = serializers.DateTimeField()
    due_on = serializers.DateField()
    paid_at = serializers.DateTimeField(allow_null=True)

    def get_object(self, obj) -> str:
        return "invoice"


class InvoiceDetailOut(InvoiceOut):
    lines = serializers.SerializerMethodField()

    @extend_schema(responses=InvoiceLineOut(many=True))
    def get_lines(self, obj) -> list[dict]:
        # many=True builds a ListSerializer, whose .data is a list (the stubs say a dict).
        return InvoiceLineOut(rendering.invoice_lines(invoice=obj), many=True).data  # type: ignore[return-value]


class InvoiceSendIn(serializers.Serializer):
    to = serializers.ListField(
        child=serializers.EmailField(), required=False, allow_empty=False, max_length=20
    )


class _DocumentView(TenantAPIView):
    """A view whose success body is a document (HTML, PDF): errors are still problem JSON,
    whatever the ``Accept`` header asks for."""

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type


class InvoiceListView(TenantAPIView):
    """The organisation's invoices, newest first."""

    actions = {"GET": Action.INVOICES_READ}

    @extend_schema(
        operation_id="invoices_list", responses=page_of(InvoiceOut), parameters=PAGE_PARAMS
    )
    def get(self, request):
        return self.paginate(
            invoice_list(organization=self.organization), InvoiceOut, ("-issued_at", "-pk")
        )


class InvoiceDetailView(TenantAPIView):
    """One invoice with its lines."""

    actions = {"GET": Action.INVOICES_READ}

    @extend_schema(responses=InvoiceDetailOut)
    def get(self, request, invoice_id: str):
        invoice = invoice_get(organization=self.organization, invoice_id=invoice_id)
        return Response(InvoiceDetailOut(invoice).data)


class InvoiceHtmlView(_DocumentView):
    """The invoice as a printable HTML page."""

    actions = {"GET": Action.INVOICES_READ}

    @extend_schema(
        responses={(200, "text/html"): OpenApiResponse(description="printable HTML invoice")}
    )
    def get(self, request, invoice_id: str):
        invoice = invoice_get(organization=self.organization, invoice_id=invoice_id)
        return HttpResponse(
            rendering.invoice_html(invoice=invoice), content_type="text/html; charset=utf-8"
        )


class InvoicePdfView(_DocumentView):
    """The invoice as an A4 PDF, downloaded as ``{number}.pdf``."""

    actions = {"GET": Action.INVOICES_READ}

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiResponse(description="A4 PDF invoice")}
    )
    def get(self, request, invoice_id: str):
        invoice = invoice_get(organization=self.organization, invoice_id=invoice_id)
        response = HttpResponse(
            rendering.invoice_pdf(invoice=invoice), content_type="application/pdf"
        )
        response["Content-Disposition"] = f'attachment; filename="{invoice.number}.pdf"'
        return response


class InvoiceSendView(TenantAPIView):
    """Email the invoice (PDF attached) to ``to`` (members and billing contacts only: another
    address is a 422 naming it), or by default to the contract's billing contact, else the
    organisation's owners. 202 with ``to`` (the addresses reached) and ``results``, one per
    recipient (``sent`` or ``failed``): one refused address does not stop the others."""

    actions = {"POST": Action.INVOICES_READ}

    @extend_schema(
        request=InvoiceSendIn,
        responses={
            202: OpenApiResponse(
                description='{"object": "invoice_sent", "invoice": id, "to": [emails sent], '
                '"results": [{"email", "status": "sent" | "failed", "error"?}]}'
            )
        },
    )
    def post(self, request, invoice_id: str):
        invoice = invoice_get(organization=self.organization, invoice_id=invoice_id)
        ser = InvoiceSendIn(data=request.data if hasattr(request.data, "get") else {})
        ser.is_valid(raise_exception=True)
        to = ser.validated_data.get("to")
        recipients = list(dict.fromkeys(to or invoice_recipients(invoice=invoice)))
        report = invoice_send(invoice=invoice, to=recipients, actor=self.actor)
        return Response(
            {
                "object": "invoice_sent",
                "invoice": invoice.pk,
                "to": report.sent,
                "results": report.results(),
            },
            status=status.HTTP_202_ACCEPTED,
        )
