from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "saas.datasets"
    label = "datasets"
