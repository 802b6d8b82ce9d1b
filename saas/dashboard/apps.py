from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "saas.dashboard"
    label = "dashboard"
    verbose_name = "Customer dashboard"
