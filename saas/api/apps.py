from django.apps import AppConfig

# Imported for its side effect: defining the class registers the API-key security scheme with
# drf-spectacular. It needs no app registry, so it is a plain module import, not in ready().
from . import schema  # noqa: F401


class ApiConfig(AppConfig):
    name = "saas.api"
    label = "api"
