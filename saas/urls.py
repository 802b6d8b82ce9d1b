from django.contrib import admin
from django.urls import include, path
from hijack.views import ReleaseUserView  # type: ignore[import-untyped]

from saas.common import health
from saas.console.metrics import metrics_view
from saas.dashboard.auth import throttled

urlpatterns = [
    # The admin's sign-in takes the same per-address limit as the dashboard's (django-axes'
    # lockout covers both through the authentication backend); before admin.site.urls, so
    # this pattern answers /admin/login/.
    path("admin/login/", throttled("login")(admin.site.login)),
    path("admin/", admin.site.urls),
    path("console/", include("saas.console.urls")),
    # Only hijack's release view: starting goes through /console/support/start (reason, audit).
    path("hijack/release/", ReleaseUserView.as_view(), name="hijack-release"),
    path("v1/", include("saas.api.v1.urls")),
    path("stripe/", include("saas.api.stripe_urls")),
    path("healthz", health.live),  # the old liveness URL (scripts/stack.py, compose)
    path("health/live", health.live),
    path("health/ready", health.ready),
    path("metrics", metrics_view),
    path("", include("saas.dashboard.urls")),
]

handler400 = "saas.api.errors.bad_request_view"
handler403 = "saas.api.errors.forbidden_view"
handler404 = "saas.api.errors.not_found_view"
handler500 = "saas.api.errors.server_error_view"
