from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "saas.console"
    label = "console"
    verbose_name = "Operator console"
