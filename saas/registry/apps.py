from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "saas.registry"
    label = "registry"
