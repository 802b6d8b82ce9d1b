"""Operator reads across every tenant for the console's "at a glance" and jobs pages.

These are the one place job reads are not tenant-scoped: an operator looks at the whole fleet.
Each query uses ``unscoped_all_tenants()`` on purpose and only the console (staff only) calls
them. Nothing here writes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import redis
from django.conf import settings
from django.db import connection
from django.db.models import Case, IntegerField, OuterRef, Subquery, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from saas.celery import Queue, app

from .liveness import _KEY as _WORKER_KEY
from .models import TrainingJob

Status = TrainingJob.Status

# kombu's Redis transport keeps one list per queue and priority step: the plain name holds
# priority 0, "<name>\x06\x16<p>" the others (kombu.transport.redis, PRIORITY_STEPS).
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


@dataclass
class QueueDepth:
    """One Celery queue: messages waiting in the broker, queued jobs routed to it, consumers."""

    name: str
    depth: int | None  # None: the broker did not answer
    queued_jobs: int
    oldest_queued_seconds: float | None
    consumers: int  # workers whose heartbeat names this queue (saas.jobs.liveness)
    backed_up: bool


@dataclass
class WorkerInfo:
    """One Celery worker as its inspect replies and Redis heartbeat describe it."""

    hostname: str
    queues: list[str] = field(default_factory=list)
    active: list[dict[str, Any]] = field(default_factory=list)  # {"name", "job_id", "since"}
    last_heartbeat: datetime | None = None
    answered: bool = False


def _redis() -> redis.Redis:
    """The broker's Redis; raises ``redis.RedisError`` when none is configured."""
    url = getattr(settings, "REDIS_URL", "") or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise redis.ConnectionError("no Redis broker configured (REDIS_URL)")
    return redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)


def queue_depths(*, now: datetime | None = None) -> list[QueueDepth]:
    """Every queue of :class:`saas.celery.Queue`: broker depth (LLEN over kombu's priority
    lists), jobs queued for it in PostgreSQL with the oldest one's age (s), live consumers.

    ``backed_up`` when the oldest queued job has waited longer than
    ``TRAINYARD_CONSOLE_BACKLOG_SECONDS`` (default 300) or nobody consumes a queue holding work.
    """
    now = now or timezone.now()
    limit = float(settings.TRAINYARD_CONSOLE_BACKLOG_SECONDS)
    out = []
    for q in Queue:
        try:
            client = _redis()
            names = [q.value, *(f"{q.value}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS)]
            pipe = client.pipeline(transaction=False)
            for n in names:
                pipe.llen(n)
            depth: int | None = sum(int(x) for x in pipe.execute())
            consumers = int(
                client.zcount(
                    _WORKER_KEY.format(queue=q.value),
                    time.time() - 2 * settings.TRAINYARD_HEARTBEAT_STALE_SECONDS,
                    "+inf",
                )
            )
        except redis.RedisError:
            depth, consumers = None, 0
        device = "gpu" if q is Queue.TRAINING_GPU else "cpu"
        queued = TrainingJob.objects.unscoped_all_tenants().filter(status=Status.QUEUED)
        if q is Queue.MAINTENANCE:
            queued = queued.none()
        else:
            queued = queued.filter(device=device)
        oldest = queued.order_by("created_at").values_list("created_at", flat=True).first()
        age = (now - oldest).total_seconds() if oldest else None
        count = queued.count()
        backed_up = bool((age is not None and age > limit) or ((depth or count) and not consumers))
        out.append(QueueDepth(q.value, depth, count, age, consumers, backed_up))
    return out


def workers_online(*, timeout: float = 1.0) -> list[WorkerInfo]:
    """Workers from Celery's inspect API (``active_queues``, ``active``; waits ``timeout`` s at
    most) merged with the Redis heartbeats of :mod:`saas.jobs.liveness`, so a worker busy in a
    long task that does not answer inspect in time still shows, marked ``answered=False``."""
    workers: dict[str, WorkerInfo] = {}
    try:
        client = _redis()
        for q in Queue:
            pairs = cast(
                "list[tuple[bytes, float]]",
                client.zrange(_WORKER_KEY.format(queue=q.value), 0, -1, withscores=True),
            )
            for host, score in pairs:
                name = host.decode() if isinstance(host, bytes) else str(host)
                w = workers.setdefault(name, WorkerInfo(name))
                if q.value not in w.queues:
                    w.queues.append(q.value)
                at = datetime.fromtimestamp(score, tz=timezone.get_current_timezone())
                w.last_heartbeat = max(w.last_heartbeat or at, at)
    except redis.RedisError:
        pass
    try:
        inspect = app.control.inspect(timeout=timeout)
        queues = inspect.active_queues() or {}
        active = inspect.active() or {}
    except Exception:  # the broker is down or replied garbage: show what the heartbeats say
        queues, active = {}, {}
    for name, qs in queues.items():
        w = workers.setdefault(name, WorkerInfo(name))
        w.answered = True
        w.queues = sorted({*w.queues, *(q.get("name", "") for q in qs)})
    for name, tasks in active.items():
        w = workers.setdefault(name, WorkerInfo(name))
        w.answered = True
        for t in tasks:
            started = t.get("time_start")
            w.active.append(
                {
                    "name": t.get("name", ""),
                    "job_id": (t.get("kwargs") or {}).get("job_id", ""),
                    "since": datetime.fromtimestamp(started, tz=timezone.get_current_timezone())
                    if started
                    else None,
                }
            )
    return sorted(workers.values(), key=lambda w: w.hostname)


def jobs_active(*, limit: int = 200) -> list[TrainingJob]:
    """Running then queued jobs, oldest first, with their organisation (at most ``limit``);
    each queued job carries ``queue_position`` and ``wait_reason`` as the API reports them.

    One SQL query whatever the number of jobs: the figures ``training_job_queue_info`` needs
    (jobs ahead on the device queue, the tenant's running jobs, its plan's limit) are
    annotated here, correlated on each row's own organisation, as the tenant-scoped list does
    for one organisation."""
    from saas.billing.models import BillingAccount

    from .selectors import _count, training_job_queue_info

    every = TrainingJob.objects.unscoped_all_tenants()  # operator view: all tenants on purpose
    ahead = every.filter(
        status=Status.QUEUED, device=OuterRef("device"), created_at__lt=OuterRef("created_at")
    )
    running = every.filter(status=Status.RUNNING, organization_id=OuterRef("organization_id"))
    plan_limit = BillingAccount.objects.unscoped_all_tenants().filter(
        organization_id=OuterRef("organization_id")
    )
    # The annotations are declared on TrainingJob (typed readers); django-stubs reports
    # annotating a declared attribute as a redefinition, as in selectors.training_job_list.
    jobs = list(
        every.filter(status__in=[Status.RUNNING, Status.QUEUED])  # type: ignore[no-redef]
        .select_related("organization")
        .defer("metrics", "misclassified")
        .annotate(
            queue_ahead=Case(
                When(status=Status.QUEUED, then=Coalesce(_count(ahead, "device"), 0)),
                default=None,
                output_field=IntegerField(),
            ),
            org_running=Coalesce(_count(running, "organization_id"), 0),
            max_running_jobs=Subquery(
                plan_limit.values("plan__max_running_jobs")[:1], output_field=IntegerField()
            ),
        )
        .order_by("-status", "created_at")[:limit]
    )
    for job in jobs:
        position, reason = (
            training_job_queue_info(job=job) if job.status == Status.QUEUED else (None, None)
        )
        job.queue_position, job.wait_reason = position, reason  # type: ignore[attr-defined]
    return jobs


def jobs_stuck(*, now: datetime | None = None) -> list[TrainingJob]:
    """Running jobs whose heartbeat is older than ``TRAINYARD_HEARTBEAT_STALE_SECONDS``: the
    reaper's rule (``saas.jobs.services.reaper``), so what the console calls stuck is what the
    reaper would re-enqueue."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.TRAINYARD_HEARTBEAT_STALE_SECONDS)
    return list(
        TrainingJob.objects.unscoped_all_tenants()
        .filter(status=Status.RUNNING, heartbeat_at__lt=cutoff)
        .select_related("organization")
        .order_by("heartbeat_at")
    )


def job_stats(*, hours: int = 24) -> list[dict[str, Any]]:
    """Finished jobs of the last ``hours`` by base model and device: ``finished``, ``failed``,
    ``failure_rate`` (0–1), ``p50_seconds`` and ``p95_seconds`` of started→finished (PostgreSQL
    ``percentile_cont``, over jobs that started)."""
    sql = """
        SELECT base_model, device, count(*) AS finished,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               percentile_cont(0.5) WITHIN GROUP (
                   ORDER BY extract(epoch FROM finished_at - started_at)) AS p50,
               percentile_cont(0.95) WITHIN GROUP (
                   ORDER BY extract(epoch FROM finished_at - started_at)) AS p95
        FROM jobs_trainingjob
        WHERE finished_at >= now() - make_interval(hours => %s)
          AND status IN ('succeeded', 'failed', 'cancelled')
        GROUP BY base_model, device
        ORDER BY finished DESC
    """
    with connection.cursor() as cur:
        cur.execute(sql, [hours])
        rows = cur.fetchall()
    return [
        {
            "base_model": bm,
            "device": dev,
            "finished": n,
            "failed": f,
            "failure_rate": (f / n) if n else 0.0,
            "p50_seconds": float(p50) if p50 is not None else None,
            "p95_seconds": float(p95) if p95 is not None else None,
        }
        for bm, dev, n, f, p50, p95 in rows
    ]
