from django.apps import AppConfig


class ApikeysConfig(AppConfig):
    name = "saas.apikeys"
    label = "apikeys"
