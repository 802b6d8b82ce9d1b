"""Invoice routes under /v1/ (list, detail, HTML and PDF renderings, send)."""

from django.urls import path

from . import invoice_views as v

urlpatterns: list = [
    path("invoices", v.InvoiceListView.as_view()),
    path("invoices/<str:invoice_id>", v.InvoiceDetailView.as_view()),
    path("invoices/<str:invoice_id>/html", v.InvoiceHtmlView.as_view()),
    path("invoices/<str:invoice_id>/pdf", v.InvoicePdfView.as_view()),
    path("invoices/<str:invoice_id>/send", v.InvoiceSendView.as_view()),
]
