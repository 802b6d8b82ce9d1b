from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "saas.inference"
    label = "inference"
