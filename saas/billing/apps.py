from django.apps import AppConfig
from django.db.models.signals import post_save


class BillingConfig(AppConfig):
    name = "saas.billing"
    label = "billing"

    def ready(self) -> None:
        # Not a cycle but Django's rule: receivers import models, which may only be imported
        # once the app registry is ready, i.e. here.
        from .receivers import organization_created

        post_save.connect(
            organization_created,
            sender="tenancy.Organization",
            dispatch_uid="billing.organization_created",
        )
