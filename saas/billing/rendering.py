"""Invoice presentation: HTML and PDF (ReportLab); pure reads (sending is
``saas.billing.services.invoices.invoice_send``).

The HTML and the PDF show the same content, built once by :func:`invoice_document`: the
issuer (settings ``TRAINYARD_ISSUER_NAME`` / ``TRAINYARD_ISSUER_ADDRESS``), who is billed, the
invoice's number and dates, its lines and totals. Amounts are shown with the currency code and
the currency's minor unit (2 decimals; 0 for JPY and the other zero-decimal currencies).
``period_end`` is exclusive in the model, so the period shows its last day (``period_end - 1``).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.sax.saxutils import escape

from django.conf import settings
from django.template.loader import render_to_string

from .models import Invoice, InvoiceLine
from .pricing import currency_places


@dataclass(frozen=True)
class LineView:
    """One invoice line, formatted for display."""

    description: str
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything an invoice shows, as display strings (shared by the HTML and the PDF)."""

    issuer_name: str
    issuer_address_lines: list[str]
    bill_to_name: str
    billing_contact: str
    po_number: str
    number: str
    status: str
    issue_date: str
    period: str
    due_date: str
    currency: str
    lines: list[LineView]
    subtotal: str
    credit_applied: str
    has_credit: bool
    tax_label: str
    tax: str
    total: str
    totals: list[tuple[str, str]] = field(default_factory=list)


def _plain(value: Decimal, *, grouped: bool = False) -> str:
    """``value`` without exponent notation or trailing zeros (``1.500000`` → ``1.5``), with
    thousands separators when ``grouped`` (``12,500``)."""
    text = format(value, ",f" if grouped else "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _grouped(value: Decimal, places: int, *, min_places: int | None = None) -> str:
    """``value`` with thousands separators, ``places`` decimals (trailing zeros trimmed down
    to ``min_places`` when it is given)."""
    q = Decimal(1).scaleb(-places)
    text = f"{value.quantize(q, rounding=ROUND_HALF_UP):,.{places}f}"
    if min_places is not None and places > min_places:
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0").ljust(min_places, "0")
        text = f"{whole}.{frac}" if frac else whole
    return text


def format_money(amount: Decimal, currency: str) -> str:
    """``USD 1,234.50``, ``-USD 10.00``; ``JPY 1,235`` (rounded half-up to the currency's
    minor unit)."""
    text = _grouped(Decimal(amount), currency_places(currency))
    sign, text = ("-", text[1:]) if text.startswith("-") else ("", text)
    if not text.strip("0.,"):  # -0.001 rounds to "0.00", not "-0.00"
        sign = ""
    return f"{sign}{currency.upper()} {text}"


def format_unit_price(price: Decimal, currency: str) -> str:
    """A unit price keeps up to 8 decimals (a prediction can cost a fraction of a cent), but
    shows at least the currency's minor unit: ``USD 0.00125``, ``USD 2.00``."""
    places = currency_places(currency)
    return f"{currency.upper()} {_grouped(Decimal(price), 8, min_places=places)}"


def _date(value: dt.date) -> str:
    return f"{value.day} {value:%b %Y}"


def invoice_lines(*, invoice: Invoice) -> list[InvoiceLine]:
    """The invoice's lines in position order (tenant-scoped to the invoice's organisation)."""
    return list(
        InvoiceLine.objects.for_tenant(invoice.organization_id)
        .filter(invoice=invoice)
        .order_by("position", "pk")
    )


def invoice_document(*, invoice: Invoice) -> InvoiceDocument:
    """The invoice's display content. Reads its organisation, contract and lines."""
    cur = invoice.currency
    contract = invoice.contract
    address = getattr(settings, "TRAINYARD_ISSUER_ADDRESS", "") or ""
    rate = Decimal(invoice.tax_rate) * 100
    last_day = invoice.period_end - dt.timedelta(days=1)
    lines = [
        LineView(
            description=line.description,
            quantity=_plain(line.quantity, grouped=True),
            unit_price=format_unit_price(line.unit_price, cur),
            amount=format_money(line.amount, cur),
        )
        for line in invoice_lines(invoice=invoice)
    ]
    doc: dict[str, Any] = dict(
        issuer_name=getattr(settings, "TRAINYARD_ISSUER_NAME", "Trainyard") or "Trainyard",
        issuer_address_lines=[s.strip() for s in address.splitlines() if s.strip()],
        bill_to_name=invoice.organization.name,
        billing_contact=contract.billing_contact if contract else "",
        po_number=invoice.po_number or (contract.po_number if contract else ""),
        number=invoice.number,
        status=invoice.get_status_display().upper(),
        issue_date=_date(invoice.issued_at.date()),
        period=f"{_date(invoice.period_start)} – {_date(last_day)}",
        due_date=_date(invoice.due_on),
        currency=cur.upper(),
        lines=lines,
        subtotal=format_money(invoice.subtotal, cur),
        credit_applied=format_money(-invoice.credit_applied, cur),
        has_credit=bool(invoice.credit_applied),
        tax_label=f"Tax ({_plain(rate)}%)",
        tax=format_money(invoice.tax, cur),
        total=format_money(invoice.total, cur),
    )
    totals: list[tuple[str, str]] = [("Subtotal", doc["subtotal"])]
    if doc["has_credit"]:
        totals.append(("Credit applied", doc["credit_applied"]))
    totals += [(doc["tax_label"], doc["tax"]), ("Total due", doc["total"])]
    return InvoiceDocument(**doc, totals=totals)


def invoice_html(*, invoice: Invoice) -> str:
    """The invoice as a standalone, printable HTML page (``templates/billing/invoice.html``).

    Returns: a complete UTF-8 HTML document (``<!doctype html>…``). Tenant-supplied text is
    auto-escaped by the template engine.
    """
    return render_to_string("billing/invoice.html", {"doc": invoice_document(invoice=invoice)})


def invoice_pdf(*, invoice: Invoice) -> bytes:
    """The invoice as an A4 PDF (one page, more when the lines do not fit; the lines table's
    header repeats on each page and each page is numbered).

    Returns: the PDF file's bytes (starting with ``%PDF``).
    """
    # Not a cycle: reportlab takes ~0.14 s to import (measured with -X importtime) and only a
    # PDF download needs it, so it stays out of every web process's and test run's start-up.
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_RIGHT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    doc = invoice_document(invoice=invoice)
    base = getSampleStyleSheet()["Normal"]
    normal = ParagraphStyle("inv", parent=base, fontName="Helvetica", fontSize=9.5, leading=12.5)
    small = ParagraphStyle(
        "inv-small", parent=normal, fontSize=8.5, textColor=colors.HexColor("#555555")
    )
    bold = ParagraphStyle("inv-bold", parent=normal, fontName="Helvetica-Bold")
    right = ParagraphStyle("inv-right", parent=normal, alignment=TA_RIGHT)
    right_bold = ParagraphStyle("inv-right-bold", parent=bold, alignment=TA_RIGHT)
    title = ParagraphStyle("inv-title", parent=bold, fontSize=20, leading=24, alignment=TA_RIGHT)
    issuer = ParagraphStyle("inv-issuer", parent=bold, fontSize=14, leading=18)

    def p(text: str, style=normal) -> Paragraph:
        return Paragraph(escape(text), style)

    width = A4[0] - 40 * mm
    grey = colors.HexColor("#d0d0d0")
    story: list = []

    # Header: issuer on the left, "INVOICE" and its number on the right.
    issuer_cell = [p(doc.issuer_name, issuer)] + [p(s, small) for s in doc.issuer_address_lines]
    title_cell = [Paragraph("INVOICE", title), p(doc.number, right_bold), p(doc.status, right)]
    header = Table([[issuer_cell, title_cell]], colWidths=[width * 0.6, width * 0.4])
    header.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
            ]
        )
    )
    story += [header, Spacer(1, 8 * mm)]

    # Bill-to on the left, the invoice's facts on the right.
    bill_to = [p("BILL TO", small), p(doc.bill_to_name, bold)]
    if doc.billing_contact:
        bill_to.append(p(doc.billing_contact))
    if doc.po_number:
        bill_to.append(p(f"PO number: {doc.po_number}"))
    facts = [
        ("Invoice number", doc.number),
        ("Issue date", doc.issue_date),
        ("Billing period", doc.period),
        ("Due date", doc.due_date),
        ("Currency", doc.currency),
    ]
    facts_table = Table(
        [[p(k, small), p(v, right)] for k, v in facts],
        colWidths=[width * 0.17, width * 0.33 - 6],  # text ends where the amounts' does
    )
    facts_table.setStyle(
        TableStyle(
            [
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    meta = Table([[bill_to, facts_table]], colWidths=[width * 0.5, width * 0.5])
    meta.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("RIGHTPADDING", (-1, 0), (-1, 0), 0),
            ]
        )
    )
    story += [meta, Spacer(1, 8 * mm)]

    # Lines, then the totals in the same table: its header row repeats on every page, and
    # NOSPLIT keeps the totals with the last lines (never alone on a page).
    col = [width * 0.46, width * 0.14, width * 0.2, width * 0.2]
    rows = [
        [
            p("Description", bold),
            p("Quantity", right_bold),
            p("Unit price", right_bold),
            p("Amount", right_bold),
        ]
    ]
    rows += [
        [
            p(line.description),
            p(line.quantity, right),
            p(line.unit_price, right),
            p(line.amount, right),
        ]
        for line in doc.lines
    ]
    if not doc.lines:
        rows.append([p("No charges this period.", small), "", "", ""])
    last_line = len(rows) - 1
    for i, (label, value) in enumerate(doc.totals):
        style = right_bold if i == len(doc.totals) - 1 else right
        rows.append(["", p(label, style), "", p(value, style)])
    first_total = last_line + 1
    lines_table = Table(rows, colWidths=col, repeatRows=1)
    lines_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f1f1")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, last_line), 0.3, grey),
                ("TOPPADDING", (0, 0), (-1, last_line), 4),
                ("BOTTOMPADDING", (0, 0), (-1, last_line), 4),
                ("TOPPADDING", (0, first_total), (-1, -1), 2),
                ("BOTTOMPADDING", (0, first_total), (-1, -1), 2),
                ("TOPPADDING", (0, first_total), (-1, first_total), 8),
                ("SPAN", (1, first_total), (2, first_total)),
                *[("SPAN", (1, r), (2, r)) for r in range(first_total + 1, len(rows))],
                ("LINEABOVE", (1, -1), (-1, -1), 0.8, colors.black),
                ("TOPPADDING", (0, -1), (-1, -1), 4),
                ("NOSPLIT", (0, max(1, last_line - 1)), (-1, -1)),
            ]
        )
    )
    story += [
        lines_table,
        Spacer(1, 10 * mm),
        p(f"Please pay {doc.total} by {doc.due_date}, quoting invoice {doc.number}.", small),
    ]

    footer = f"{doc.issuer_name} · Invoice {doc.number}"

    class FooterCanvas(Canvas):
        """Draws "Page n of N" once the page count is known (pages are buffered until save)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._page_states: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (ReportLab's name)
            self._page_states.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            count = len(self._page_states)
            for state in self._page_states:
                self.__dict__.update(state)
                self.saveState()
                self.setFont("Helvetica", 8)
                self.setFillColor(colors.HexColor("#777777"))
                self.drawString(20 * mm, 12 * mm, footer)
                self.drawRightString(
                    A4[0] - 20 * mm, 12 * mm, f"Page {self._pageNumber} of {count}"
                )
                self.restoreState()
                super().showPage()
            super().save()

    buf = io.BytesIO()
    pdf = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=22 * mm,
        title=f"Invoice {doc.number}",
        author=doc.issuer_name,
        subject=f"Invoice {doc.number} for {doc.bill_to_name}",
    )
    pdf.build(story, canvasmaker=FooterCanvas)
    return buf.getvalue()
