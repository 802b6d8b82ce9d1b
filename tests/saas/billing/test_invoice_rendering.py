"""Invoice presentation: HTML, PDF, sending by email, and the /v1/invoices endpoints."""

from __future__ import annotations

import datetime as dt
import io
import smtplib
from decimal import Decimal

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from pypdf import PdfReader

from saas.billing.models import Contract, Invoice, InvoiceLine
from saas.billing.rendering import format_money, invoice_html, invoice_pdf
from saas.billing.services.invoices import (
    InvoiceUndeliverable,
    RecipientNotAllowed,
    invoice_send,
)
from saas.common.actor import Actor
from saas.tenancy.models import AuditEvent

LINES = [
    ("Pro plan, January 2026", "1", "49.00", "49.00"),
    ("Text predictions", "12500", "0.00125", "15.63"),
    ("GPU training seconds", "3600.5", "0.0012", "4.32"),
]


def make_invoice(
    org, *, number="TY-2026-000042", currency="usd", lines=LINES, contract=None, **kw
) -> Invoice:
    subtotal = sum((Decimal(a) for *_, a in lines), Decimal(0))
    fields = {
        "subtotal": subtotal,
        "credit_applied": Decimal("10.00"),
        "tax_rate": Decimal("0.2000"),
        "tax": ((subtotal - 10) * Decimal("0.2")).quantize(Decimal("0.01")),
    }
    fields["total"] = subtotal - fields["credit_applied"] + fields["tax"]
    fields.update(kw)
    invoice = Invoice.objects.for_tenant(org).create(
        organization=org,
        number=number,
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 2, 1),
        currency=currency,
        due_on=dt.date(2026, 3, 3),
        contract=contract,
        **fields,
    )
    for i, (desc, qty, price, amount) in enumerate(lines, start=1):
        InvoiceLine.objects.for_tenant(org).create(
            organization=org,
            invoice=invoice,
            position=i,
            kind=InvoiceLine.Kind.USAGE,
            description=desc,
            quantity=Decimal(qty),
            unit_price=Decimal(price),
            amount=Decimal(amount),
        )
    return invoice


def make_contract(org) -> Contract:
    return Contract.objects.for_tenant(org).create(
        organization=org,
        starts_on=dt.date(2026, 1, 1),
        ends_on=dt.date(2026, 12, 31),
        po_number="PO-7781",
        billing_contact="ap@acme.test",
    )


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --- rendering -------------------------------------------------------------------------------


def test_html_shows_number_lines_and_totals(acme, settings):
    settings.TRAINYARD_ISSUER_NAME = "Trainyard Ltd"
    settings.TRAINYARD_ISSUER_ADDRESS = "1 Rail Road\nLondon"
    invoice = make_invoice(acme.org, contract=make_contract(acme.org), po_number="PO-7781")
    html = invoice_html(invoice=invoice)
    assert html.lstrip().startswith("<!doctype html>")
    assert "TY-2026-000042" in html
    for desc, _, _, amount in LINES:
        assert desc in html
        assert f"USD {amount}" in html
    assert "USD 0.00125" in html  # sub-cent unit price keeps its precision
    assert "12,500" in html and "3,600.5" in html  # quantities
    assert "USD 68.95" in html  # subtotal
    assert "-USD 10.00" in html  # credit
    assert "Tax (20%)" in html
    assert f"USD {invoice.total}" in html
    assert "Trainyard Ltd" in html and "1 Rail Road" in html
    assert "ap@acme.test" in html and "PO-7781" in html
    assert "1 Jan 2026 – 31 Jan 2026" in html  # period_end is exclusive
    assert "OPEN" in html


def test_html_escapes_tenant_text(acme):
    invoice = make_invoice(acme.org, lines=[("<script>alert(1)</script>", "1", "1", "1.00")])
    html = invoice_html(invoice=invoice)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_money_formatting():
    assert format_money(Decimal("1234.5"), "usd") == "USD 1,234.50"
    assert format_money(Decimal("1234.5"), "jpy") == "JPY 1,235"
    assert format_money(Decimal("-0.005"), "eur") == "-EUR 0.01"
    assert format_money(Decimal("0"), "usd") == "USD 0.00"


def test_jpy_invoice_has_no_decimals(acme):
    invoice = make_invoice(
        acme.org,
        currency="jpy",
        lines=[("Predictions", "1000", "1.5", "1500.00")],
        credit_applied=Decimal(0),
        tax_rate=Decimal("0.1000"),
        tax=Decimal("150"),
        total=Decimal("1650"),
    )
    html = invoice_html(invoice=invoice)
    assert "JPY 1,650" in html and "JPY 1,650.00" not in html
    assert "Credit applied" not in html
    assert "Tax (10%)" in html


def test_pdf_has_number_and_total(acme):
    invoice = make_invoice(acme.org)
    data = invoice_pdf(invoice=invoice)
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "TY-2026-000042" in text
    assert f"USD {invoice.total}" in text
    for *_, amount in LINES:
        assert f"USD {amount}" in text


def test_pdf_long_invoice_spans_pages(acme):
    lines = [(f"Meter {i}", "1", "1", "1.00") for i in range(90)]
    invoice = make_invoice(acme.org, lines=lines, credit_applied=Decimal(0))
    reader = PdfReader(io.BytesIO(invoice_pdf(invoice=invoice)))
    assert len(reader.pages) > 1
    assert "Description" in reader.pages[1].extract_text()  # the header row repeats
    assert f"USD {invoice.total}" in reader.pages[-1].extract_text()


# --- sending ---------------------------------------------------------------------------------


def test_send_to_billing_contact_with_pdf_and_audit(acme):
    invoice = make_invoice(acme.org, contract=make_contract(acme.org))
    invoice_send(invoice=invoice, actor=Actor.system())
    assert len(mail.outbox) == 1
    msg = mail.outbox[0]
    assert msg.to == ["ap@acme.test"]
    assert "TY-2026-000042" in msg.subject
    [(filename, content, mimetype)] = msg.attachments
    assert filename == "TY-2026-000042.pdf" and mimetype == "application/pdf"
    assert content.startswith(b"%PDF")
    event = AuditEvent.objects.for_tenant(acme.org).get(action="invoice.sent")
    assert event.target_id == invoice.pk
    assert event.data["to"] == ["ap@acme.test"]


def test_send_defaults_to_owners_without_contract(acme):
    invoice_send(invoice=make_invoice(acme.org), actor=Actor.system())
    assert mail.outbox[0].to == ["owner@acme.test"]


def test_send_to_explicit_recipients(acme):
    report = invoice_send(
        invoice=make_invoice(acme.org),
        to=["admin@acme.test", "billing@acme.test", "Admin@acme.test"],
        actor=Actor.system(),
    )
    # One message each (recipients do not see one another), duplicates in any case dropped.
    assert [m.to for m in mail.outbox] == [["admin@acme.test"], ["billing@acme.test"]]
    assert report.sent == ["admin@acme.test", "billing@acme.test"] and report.failed == {}


def test_send_email_failure_records_no_audit(acme, settings):
    settings.EMAIL_BACKEND = "tests.saas.billing.test_invoice_rendering.FailingBackend"
    invoice = make_invoice(acme.org)
    with pytest.raises(InvoiceUndeliverable):
        invoice_send(invoice=invoice, actor=Actor.system())
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invoice.sent").exists()


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise OSError("smtp down")


class RefusesOneBackend(locmem.EmailBackend):
    """The in-memory backend, but the server refuses one address (as an SMTP server answering
    550 to one RCPT does)."""

    def send_messages(self, messages):
        for m in messages:
            if "viewer@acme.test" in m.to:
                raise smtplib.SMTPRecipientsRefused({"viewer@acme.test": (550, b"no such user")})
        return super().send_messages(messages)


def test_one_refused_recipient_does_not_stop_the_others(acme, settings):
    settings.EMAIL_BACKEND = "tests.saas.billing.test_invoice_rendering.RefusesOneBackend"
    invoice = make_invoice(acme.org)
    report = invoice_send(
        invoice=invoice,
        to=["admin@acme.test", "viewer@acme.test", "billing@acme.test"],
        actor=Actor.system(),
    )
    assert [m.to for m in mail.outbox] == [["admin@acme.test"], ["billing@acme.test"]]
    assert report.sent == ["admin@acme.test", "billing@acme.test"]
    assert report.failed == {"viewer@acme.test": "SMTPRecipientsRefused"}
    event = AuditEvent.objects.for_tenant(acme.org).get(action="invoice.sent")
    assert event.data["to"] == ["admin@acme.test", "billing@acme.test"]
    assert event.data["failed"] == ["viewer@acme.test"]


def test_send_to_an_outsider_is_refused_and_nothing_is_sent(acme, globex):
    with pytest.raises(RecipientNotAllowed) as info:
        invoice_send(
            invoice=make_invoice(acme.org),
            to=["admin@acme.test", "owner@globex.test"],  # a member of another organisation
            actor=Actor.system(),
        )
    assert info.value.errors == [
        {
            "field": "to[1]",
            "message": "owner@globex.test is not a member of this organisation nor a billing contact",
        }
    ]
    assert mail.outbox == []
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invoice.sent").exists()


def test_billing_contact_of_another_contract_is_allowed(acme):
    make_contract(acme.org)  # billing contact ap@acme.test, not a member
    invoice_send(invoice=make_invoice(acme.org), to=["AP@acme.test"], actor=Actor.system())
    assert mail.outbox[0].to == ["AP@acme.test"]


# --- endpoints -------------------------------------------------------------------------------


def test_billing_role_reads_list_detail_html_pdf(acme):
    invoice = make_invoice(acme.org)
    c = acme.session("billing")

    r = c.get("/v1/invoices")
    assert r.status_code == 200
    assert r.json()["object"] == "list"
    assert [i["id"] for i in r.json()["data"]] == [invoice.pk]

    r = c.get(f"/v1/invoices/{invoice.pk}")
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "invoice" and body["number"] == "TY-2026-000042"
    assert body["total"] == str(invoice.total) and body["subtotal"] == "68.95"
    assert body["credit_applied"] == "10.00"
    assert [line["amount"] for line in body["lines"]] == [a for *_, a in LINES]

    r = c.get(f"/v1/invoices/{invoice.pk}/html", HTTP_ACCEPT="text/html")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/html")
    assert b"TY-2026-000042" in r.content

    r = c.get(f"/v1/invoices/{invoice.pk}/pdf", HTTP_ACCEPT="application/pdf")
    assert r.status_code == 200
    assert r["Content-Type"] == "application/pdf"
    assert r["Content-Disposition"] == 'attachment; filename="TY-2026-000042.pdf"'
    assert r.content.startswith(b"%PDF")


def test_send_endpoint(acme):
    invoice = make_invoice(acme.org)
    r = acme.session("owner").post(
        f"/v1/invoices/{invoice.pk}/send", {"to": ["billing@acme.test"]}, format="json"
    )
    assert r.status_code == 202
    assert r.json()["to"] == ["billing@acme.test"]
    assert r.json()["results"] == [{"email": "billing@acme.test", "status": "sent"}]
    assert mail.outbox[0].to == ["billing@acme.test"]
    event = AuditEvent.objects.for_tenant(acme.org).get(action="invoice.sent")
    assert event.actor_user_id == acme.users["owner"].pk


def test_send_endpoint_rejects_bad_address(acme):
    invoice = make_invoice(acme.org)
    r = acme.session("billing").post(
        f"/v1/invoices/{invoice.pk}/send", {"to": ["not-an-email"]}, format="json"
    )
    assert r.status_code == 400
    assert r["Content-Type"] == "application/problem+json"
    assert mail.outbox == []


def test_send_endpoint_refuses_outsiders_with_422_naming_them(acme):
    invoice = make_invoice(acme.org)
    r = acme.session("billing").post(
        f"/v1/invoices/{invoice.pk}/send",
        {"to": ["admin@acme.test", "victim@example.com", "spam@example.org"]},
        format="json",
    )
    assert r.status_code == 422, r.content
    assert r["Content-Type"] == "application/problem+json"
    body = r.json()
    assert "victim@example.com" in body["detail"] and "spam@example.org" in body["detail"]
    assert [e["field"] for e in body["errors"]] == ["to[1]", "to[2]"]
    assert mail.outbox == []
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invoice.sent").exists()


def test_send_endpoint_reports_per_recipient(acme, settings):
    settings.EMAIL_BACKEND = "tests.saas.billing.test_invoice_rendering.RefusesOneBackend"
    invoice = make_invoice(acme.org)
    r = acme.session("owner").post(
        f"/v1/invoices/{invoice.pk}/send",
        {"to": ["viewer@acme.test", "admin@acme.test"]},
        format="json",
    )
    assert r.status_code == 202, r.content
    assert r.json()["to"] == ["admin@acme.test"]
    assert r.json()["results"] == [
        {"email": "admin@acme.test", "status": "sent"},
        {"email": "viewer@acme.test", "status": "failed", "error": "SMTPRecipientsRefused"},
    ]


def test_send_endpoint_when_every_recipient_fails_is_503_problem(acme, settings):
    settings.EMAIL_BACKEND = "tests.saas.billing.test_invoice_rendering.FailingBackend"
    invoice = make_invoice(acme.org)
    r = acme.session("owner").post(f"/v1/invoices/{invoice.pk}/send", {}, format="json")
    assert r.status_code == 503
    assert r["Content-Type"] == "application/problem+json"
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invoice.sent").exists()


PATHS = ["", "/html", "/pdf"]


@pytest.mark.parametrize("suffix", PATHS)
def test_viewer_gets_403(acme, suffix):
    invoice = make_invoice(acme.org)
    r = acme.session("viewer").get(f"/v1/invoices/{invoice.pk}{suffix}")
    assert r.status_code == 403
    assert r["Content-Type"] == "application/problem+json"


def test_viewer_cannot_list_or_send(acme):
    invoice = make_invoice(acme.org)
    c = acme.session("viewer")
    assert c.get("/v1/invoices").status_code == 403
    assert c.post(f"/v1/invoices/{invoice.pk}/send").status_code == 403
    assert mail.outbox == []


@pytest.mark.parametrize("suffix", PATHS)
def test_other_organisation_gets_404(acme, globex, suffix):
    invoice = make_invoice(acme.org)
    accept = {"": "application/json", "/html": "text/html", "/pdf": "application/pdf"}[suffix]
    r = globex.session("billing").get(f"/v1/invoices/{invoice.pk}{suffix}", HTTP_ACCEPT=accept)
    assert r.status_code == 404
    assert r["Content-Type"] == "application/problem+json"
    assert r.json()["status"] == 404


def test_other_organisation_cannot_list_or_send(acme, globex):
    invoice = make_invoice(acme.org)
    c = globex.session("owner")
    assert c.get("/v1/invoices").json()["data"] == []
    assert c.post(f"/v1/invoices/{invoice.pk}/send").status_code == 404
    assert mail.outbox == []
    assert not AuditEvent.objects.for_tenant(acme.org).filter(action="invoice.sent").exists()


@pytest.mark.parametrize("suffix", ["", *PATHS])
def test_api_key_gets_403(acme, suffix):
    invoice = make_invoice(acme.org)
    path = "/v1/invoices" if suffix == "" else f"/v1/invoices/{invoice.pk}{suffix}"
    r = acme.key("owner").get(path)
    assert r.status_code == 403
    assert mail.outbox == []
