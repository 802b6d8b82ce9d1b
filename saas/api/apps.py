from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "saas.api"
    label = "api"
