"""Console pages: support."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
