"""``Server-Timing: app;dur=<ms>`` on every response: the server-side render time, visible in a
browser's network panel and measured by ``bench/dashboard_render.py``."""

from __future__ import annotations

import time


class ServerTimingMiddleware:
    """Adds ``Server-Timing: app;dur=12.3`` (milliseconds, from this middleware to the response).

    Streaming responses (file downloads) get the time to the first byte.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        response["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
        return response
