from django.apps import AppConfig


class LimitsConfig(AppConfig):
    """Rate limits and idempotency: plain values in, decisions out; shared by web and serve."""

    name = "saas.limits"
    label = "limits"
