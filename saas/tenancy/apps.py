from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "saas.tenancy"
    label = "tenancy"

    def ready(self) -> None:
        # "End now" goes through hijack's own release view; its signal closes the support session.
        from hijack import signals  # type: ignore[import-untyped]

        from .impersonation import on_hijack_ended

        signals.hijack_ended.connect(on_hijack_ended, dispatch_uid="trainyard-support-ended")
