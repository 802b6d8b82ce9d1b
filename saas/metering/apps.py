from django.apps import AppConfig


class MeteringConfig(AppConfig):
    name = "saas.metering"
    label = "metering"
