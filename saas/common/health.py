"""Liveness and readiness probes for the web tier (django-health-check's checks, our answer).

``GET /health/live`` (and the old ``/healthz``) answers 200 while the process serves requests;
it touches no dependency, so a database outage does not get every web process restarted.
``GET /health/ready`` runs every readiness check and answers 200
``{"status": "ok", "checks": {name: "ok"}}`` or 503 ``{"status": "unhealthy", "checks":
{name: "ok" | "<error>"}}`` naming each failing check. The checks run one after another in the
request's thread: four cheap probes, and a thread pool would open a second database
connection per process for a ``SELECT 1``.
"""

from __future__ import annotations

import dataclasses
import datetime

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from health_check.base import HealthCheck  # type: ignore[import-untyped]
from health_check.checks import Database, Storage  # type: ignore[import-untyped]
from health_check.exceptions import HealthCheckException, ServiceUnavailable  # type: ignore[import-untyped]


@dataclasses.dataclass
class RedisPing(HealthCheck):
    """Redis (cache, rate limits, Celery broker) answers PING within two seconds."""

    timeout = datetime.timedelta(seconds=2)

    def run(self) -> None:
        url = settings.REDIS_URL
        if not url:
            return  # the demo runs without Redis (filesystem broker): nothing to reach
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        except redis.RedisError as e:
            # The exception's class, not its text: the text can carry the URL's password.
            raise ServiceUnavailable(f"unreachable ({type(e).__name__})") from e
        finally:
            client.close()


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration on disk is applied to the database (a deploy ran ``migrate`` first)."""

    alias: str = DEFAULT_DB_ALIAS

    def run(self) -> None:
        executor = MigrationExecutor(connections[self.alias])
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
            raise ServiceUnavailable(f"{len(plan)} unapplied: {names}")


def readiness_checks() -> dict[str, HealthCheck]:
    """The readiness checks by the name they carry in the answer."""
    return {
        "database": Database(),
        "redis": RedisPing(),
        "migrations": MigrationsApplied(),
        "storage": Storage(),
    }


def run_checks(checks: dict[str, HealthCheck]) -> dict[str, str]:
    """Run each check; ``{name: "ok" | error text}``. Errors from our code are reported by
    class name only (an unexpected exception's text may carry a connection string)."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check.run()  # our checks' and the library's Database/Storage run() are sync
        except HealthCheckException as e:
            results[name] = str(e)
        except Exception as e:  # noqa: BLE001 — a probe must answer, never 500
            results[name] = f"error ({type(e).__name__})"
        else:
            results[name] = "ok"
    return results


@never_cache
def live(request: HttpRequest) -> JsonResponse:
    """Liveness: 200 ``{"status": "ok"}``, no dependency touched."""
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503 naming the failing ones."""
    results = run_checks(readiness_checks())
    healthy = all(v == "ok" for v in results.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unhealthy", "checks": results},
        status=200 if healthy else 503,
    )
