from django.apps import AppConfig

# Imported for its side effect: defining the class registers the API-key security scheme with
# drf-spectacular. It needs no app registry, so it is a plain module import, not in ready().
from . import schema  # noqa: F401


class ApiConfig(AppConfig):
    name = "saas.api"
    label = "api"

    def ready(self) -> None:
        from django.db.models.signals import pre_save

        from saas.common.textguard import check_strings

        # Every model's strings are checked before the database (a 400, not a DataError).
        pre_save.connect(check_strings, dispatch_uid="saas.common.textguard")
