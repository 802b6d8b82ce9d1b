"""Tells drf-spectacular that ApiKeyAuthentication is HTTP Bearer (imported by ``saas.api.apps`` for its side effect)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "saas.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ty_live_<public id>_<secret>",
            "description": "An API key from the dashboard or `manage.py create_api_key`.",
        }
