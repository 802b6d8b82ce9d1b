"""Console routes, under ``/console/``. Each page module owns its ``urlpatterns``."""

from .views import economics, ops, support, tenants

app_name = "console"

urlpatterns = [
    *ops.urlpatterns,
    *tenants.urlpatterns,
    *economics.urlpatterns,
    *support.urlpatterns,
]
