"""Every route under /v1/ (the resources, the invoices, the OpenAPI schema and its docs)."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from . import billing_views as b
from . import invoice_views as i
from . import tenancy_views as t
from . import views as v

urlpatterns = [
    path("datasets", v.DatasetListView.as_view()),
    path("datasets/<str:dataset_id>", v.DatasetDetailView.as_view()),
    path("training-jobs", v.TrainingJobListView.as_view()),
    path("training-jobs/<str:job_id>", v.TrainingJobDetailView.as_view()),
    path("training-jobs/<str:job_id>/cancel", v.TrainingJobCancelView.as_view()),
    path("training-jobs/<str:job_id>/events", v.TrainingJobEventsView.as_view()),
    path("training-jobs/<str:job_id>/misclassified", v.TrainingJobMisclassifiedView.as_view()),
    path("models", v.ModelListView.as_view()),
    path("models/<str:model_id>", v.ModelDetailView.as_view()),
    path("models/<str:model_id>/download", v.ModelDownloadView.as_view()),
    path("models/<str:model_id>/predict", v.ModelPredictView.as_view()),
    path("usage", v.UsageView.as_view()),
    path("billing", b.BillingView.as_view()),
    path("billing/checkout", b.BillingCheckoutView.as_view()),
    path("billing/portal", b.BillingPortalView.as_view()),
    path("api-keys", t.ApiKeyListView.as_view()),
    path("api-keys/<str:key_id>/revoke", t.ApiKeyRevokeView.as_view()),
    path("members", t.MemberListView.as_view()),
    path("members/<str:member_id>", t.MemberDetailView.as_view()),
    path("invitations", t.InvitationListView.as_view()),
    path("invitations/accept", t.InvitationAcceptView.as_view()),
    path("audit-events", t.AuditEventListView.as_view()),
    path(
        "openapi.json",
        SpectacularJSONAPIView.as_view(permission_classes=[], authentication_classes=[]),
        name="openapi",
    ),
    path(
        "docs",
        SpectacularSwaggerView.as_view(
            url_name="openapi", permission_classes=[], authentication_classes=[]
        ),
    ),
    path("invoices", i.InvoiceListView.as_view()),
    path("invoices/<str:invoice_id>", i.InvoiceDetailView.as_view()),
    path("invoices/<str:invoice_id>/html", i.InvoiceHtmlView.as_view()),
    path("invoices/<str:invoice_id>/pdf", i.InvoicePdfView.as_view()),
    path("invoices/<str:invoice_id>/send", i.InvoiceSendView.as_view()),
]
