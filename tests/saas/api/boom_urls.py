"""The real URL conf plus routes that fail on purpose (for tests/saas/api/test_error_handlers.py):
an uncaught exception in a DRF view and in a plain Django view, PermissionDenied and
SuspiciousOperation outside DRF. The handlers are the real ones (re-exported from saas.urls)."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.urls import path
from rest_framework.views import APIView

from saas.urls import handler400, handler403, handler404, handler500, urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]


class Boom(APIView):
    authentication_classes: list = []
    permission_classes: list = []

    def get(self, request):
        raise RuntimeError("secret internals in a DRF view")


def boom(request):
    raise RuntimeError("secret internals in a Django view")


def denied(request):
    raise PermissionDenied


def suspicious(request):
    raise SuspiciousOperation("tampered")


urlpatterns = [
    path("v1/boom", Boom.as_view()),
    path("boom", boom),
    path("app/boom", boom),
    path("app/denied", denied),
    path("v1/denied", denied),
    path("app/suspicious", suspicious),
    *urlpatterns,
]
