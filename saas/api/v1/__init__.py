"""The /v1 REST API: one module per resource, each holding its views and its own input and
output serializers; ``urls.py`` routes every /v1 path."""
