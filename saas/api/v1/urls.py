"""Every route under /v1/ (the resources, the invoices, the OpenAPI schema and its docs)."""

from django.urls import path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView

from . import (
    api_keys,
    audit_events,
    billing,
    datasets,
    invitations,
    invoices,
    members,
    models,
    training_jobs,
    usage,
)

urlpatterns = [
    path("datasets", datasets.DatasetListView.as_view()),
    path("datasets/<str:dataset_id>", datasets.DatasetDetailView.as_view()),
    path("training-jobs", training_jobs.TrainingJobListView.as_view()),
    path("training-jobs/<str:job_id>", training_jobs.TrainingJobDetailView.as_view()),
    path("training-jobs/<str:job_id>/cancel", training_jobs.TrainingJobCancelView.as_view()),
    path("training-jobs/<str:job_id>/events", training_jobs.TrainingJobEventsView.as_view()),
    path(
        "training-jobs/<str:job_id>/confusion-matrix",
        training_jobs.TrainingJobConfusionMatrixView.as_view(),
    ),
    path(
        "training-jobs/<str:job_id>/misclassified",
        training_jobs.TrainingJobMisclassifiedView.as_view(),
    ),
    path("models", models.ModelListView.as_view()),
    path("models/<str:model_id>", models.ModelDetailView.as_view()),
    path("models/<str:model_id>/download", models.ModelDownloadView.as_view()),
    path("models/<str:model_id>/predict", models.ModelPredictView.as_view()),
    path("usage", usage.UsageView.as_view()),
    path("billing", billing.BillingView.as_view()),
    path("billing/checkout", billing.BillingCheckoutView.as_view()),
    path("billing/portal", billing.BillingPortalView.as_view()),
    path("api-keys", api_keys.ApiKeyListView.as_view()),
    path("api-keys/<str:key_id>", api_keys.ApiKeyDetailView.as_view()),
    path("api-keys/<str:key_id>/revoke", api_keys.ApiKeyRevokeView.as_view()),
    path("members", members.MemberListView.as_view()),
    path("members/<str:member_id>", members.MemberDetailView.as_view()),
    path("invitations", invitations.InvitationListView.as_view()),
    path("invitations/accept", invitations.InvitationAcceptView.as_view()),
    path("audit-events", audit_events.AuditEventListView.as_view()),
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
    path("invoices", invoices.InvoiceListView.as_view()),
    path("invoices/<str:invoice_id>", invoices.InvoiceDetailView.as_view()),
    path("invoices/<str:invoice_id>/html", invoices.InvoiceHtmlView.as_view()),
    path("invoices/<str:invoice_id>/pdf", invoices.InvoicePdfView.as_view()),
    path("invoices/<str:invoice_id>/send", invoices.InvoiceSendView.as_view()),
]
