"""At a glance: queues, workers, jobs, the data plane."""

from django.shortcuts import render
from django.urls import path

from ..base import staff_page


@staff_page(read=True)
def overview(request):
    """The console's front page."""
    return render(request, "console/overview.html", {"section": "overview"})


urlpatterns = [
    path("", overview, name="overview"),
]
