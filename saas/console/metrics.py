"""``GET /metrics``: django-prometheus' request and database metrics plus Trainyard's own
figures, read from PostgreSQL at scrape time (so every web process reports the same values and
none keeps counters that a restart would reset).

Custom families:
- ``trainyard_jobs{status,queue,device}`` gauge: training jobs by state (terminal states
  counted over the last day only, so the scrape stays an index range, not a full count);
- ``trainyard_job_queue_wait_seconds`` summary: ``started_at - created_at`` of jobs started in
  the last 15 minutes (count and sum; rate them for the mean wait);
- ``trainyard_usage_events_total{meter}`` counter: usage events written, per meter;
- ``trainyard_predictions_total`` counter: predictions metered (sum of the quantities).

Access: clients on loopback always; others only with ``TRAINYARD_METRICS_PUBLIC=true`` or an
``Authorization: Bearer <TRAINYARD_METRICS_TOKEN>`` header; anyone else gets a 404 (the URL
says nothing to the internet).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from saas.celery import training_queue
from saas.jobs.models import TrainingJob
from saas.metering.models import Meter, UsageEvent

_TERMINAL_WINDOW = timedelta(days=1)
_WAIT_WINDOW = timedelta(minutes=15)


class TrainyardCollector(Collector):
    """Scrape-time queries over every tenant: an operator's view, hence the unscoped managers
    (no organisation's rows leave the process but as counts and sums)."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        now = timezone.now()
        jobs = TrainingJob.objects.unscoped_all_tenants()
        gauge = GaugeMetricFamily(
            "trainyard_jobs",
            "Training jobs by status (queued and running: all; finished: the last day).",
            labels=["status", "queue", "device"],
        )
        active = {TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING}
        rows = (
            jobs.filter(status__in=active)
            .values("status", "device")
            .annotate(n=Count("id"))
            .union(
                jobs.exclude(status__in=active)
                .filter(created_at__gte=now - _TERMINAL_WINDOW)
                .values("status", "device")
                .annotate(n=Count("id"))
            )
        )
        seen = set()
        for row in rows:
            seen.add((row["status"], row["device"]))
            gauge.add_metric(
                [row["status"], training_queue(row["device"]).value, row["device"]], row["n"]
            )
        # Zeroes for the active states, so an alert on "queued > N" has a series to read.
        for status in active:
            for device in ("cpu", "gpu"):
                if (status, device) not in seen:
                    gauge.add_metric([status, training_queue(device).value, device], 0)
        yield gauge

        waits = jobs.filter(started_at__gte=now - _WAIT_WINDOW).annotate(
            wait=F("started_at") - F("created_at")
        )
        agg = waits.aggregate(n=Count("id"), total=Sum("wait"))
        total = agg["total"].total_seconds() if agg["total"] else 0.0
        summary = SummaryMetricFamily(
            "trainyard_job_queue_wait_seconds",
            "Queue wait (started_at - created_at) of jobs started in the last 15 minutes.",
        )
        summary.add_metric([], count_value=agg["n"], sum_value=total)
        yield summary

        events = UsageEvent.objects.unscoped_all_tenants()
        usage = CounterMetricFamily(
            "trainyard_usage_events", "Usage events written, by meter.", labels=["meter"]
        )
        predictions = 0.0
        for ev in events.values("meter").annotate(n=Count("id"), q=Sum("quantity")):
            usage.add_metric([ev["meter"]], ev["n"])
            if ev["meter"] == Meter.PREDICTIONS:
                predictions = float(ev["q"] or 0)
        yield usage
        yield CounterMetricFamily(
            "trainyard_predictions", "Predictions metered (all time).", value=predictions
        )


_trainyard = CollectorRegistry(auto_describe=False)
_trainyard.register(TrainyardCollector())


def _allowed(request: HttpRequest) -> bool:
    if settings.TRAINYARD_METRICS_PUBLIC:
        return True
    token = settings.TRAINYARD_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition: the process registry (django-prometheus) + Trainyard's.

    Raises Http404 for a client not allowed (see the module docstring)."""
    if not _allowed(request):
        raise Http404
    body = generate_latest(REGISTRY) + generate_latest(_trainyard)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
