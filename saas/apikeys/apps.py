from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "saas.apikeys"
    label = "apikeys"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI security scheme)
