"""The control plane's request path under load: ``GET /v1/models/{id}`` with an API key against
``/healthz``, at the same concurrency, in one run.

Starts gunicorn the way ``make run`` does (``scripts.stack.Stack``, 2 sync workers) on
``DATABASE_URL`` / ``REDIS_URL``, seeds one organisation with a trained model and an API key
(created by the owner, so the key's role lookup is on the path) on a plan whose rate limits
are out of the way (``bench-unlimited``: the limiter still runs, it just never refuses), and
drives both routes with wrk (Debian's ``/usr/bin/wrk``), alternating them ``ROUNDS`` times.

Prints per route: requests/s, p50 and p99 latency (ms), non-2xx responses; the ratio
models / healthz (the issue's goal: ≥ 0.5; the median of the rounds' ratios, each round
running both routes back to back); SQL statements per model request (Django's test client in
this process, the same code path without the HTTP server), with the request caches warm and
with them off; and, from PostgreSQL's own counters for the database (``pg_stat_database``),
new server sessions and transactions per request as gunicorn served them.

Usage: ``python bench/control_plane.py [--duration S] [--connections N] [--rounds R]
[--no-cache]`` (``--no-cache``: gunicorn with ``TRAINYARD_REQUEST_CACHE_SECONDS=0``).
Needs PostgreSQL and Redis; without them it says so and measures nothing (a SQLite figure
would say nothing about production).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402

from saas.apikeys.services import api_key_create  # noqa: E402
from saas.billing.models import Plan  # noqa: E402
from saas.billing.services import billing_plan_change  # noqa: E402
from saas.common.actor import Actor  # noqa: E402
from saas.datasets.models import Dataset  # noqa: E402
from saas.jobs.models import TrainingJob  # noqa: E402
from saas.registry.models import TrainedModel  # noqa: E402
from saas.tenancy.models import Membership  # noqa: E402
from saas.tenancy.services import organization_create  # noqa: E402
from scripts.stack import Stack  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"
BENCH_PLAN = "bench-unlimited"


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(url: str, *, duration: int, connections: int, headers: dict[str, str]) -> WrkResult:
    """One wrk run (2 threads); raises RuntimeError if wrk fails or prints no figures."""
    argv = [WRK, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if not (rps and p50 and p99 and total):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sock.groups()) if sock else 0,
    )


def seed() -> tuple[str, str]:
    """One organisation on the bench plan with a trained model; returns (model id, API key)."""
    call_command("migrate", verbosity=0)
    # Rate limits sized out of the way; the Lua script still runs on every request.
    Plan.objects.update_or_create(
        code=BENCH_PLAN,
        defaults={
            "name": "Bench (no effective rate limit)",
            "contract_based": True,  # never offered in the dashboard
            "requests_per_key": 10**9,
            "requests_per_organization": 10**9,
        },
    )
    slug = f"bench-{time.time_ns()}"
    org = organization_create(
        slug=slug, name="Bench Corp", owner_email=f"owner@{slug}.test", actor=Actor.system()
    )
    billing_plan_change(organization=org, plan_code=BENCH_PLAN, actor=Actor.system())
    owner = Membership.objects.get(organization=org).user
    ds = Dataset.objects.for_tenant(org).create(
        organization=org,
        name="sentiment.csv",
        task="text-classification",
        num_examples=3000,
        classes={"negative": 1500, "positive": 1500},
        report={},
        size_bytes=190_000,
        sha256="0" * 64,
        storage_key=f"tenants/{org.pk}/datasets/bench/data.csv",
        text_column="text",
        label_column="label",
    )
    job = TrainingJob.objects.for_tenant(org).create(
        organization=org,
        dataset=ds,
        task=ds.task,
        base_model="text-embedding-bag",
        hyperparameters={"epochs": 10, "batch_size": 32},
        status="succeeded",
    )
    classes = ["negative", "positive"]
    model = TrainedModel.objects.for_tenant(org).create(
        organization=org,
        job=job,
        task=job.task,
        base_model=job.base_model,
        classes=classes,
        metrics={
            "accuracy": 0.832,
            "macro_f1": 0.831,
            "per_class": {
                c: {"precision": 0.83, "recall": 0.83, "f1": 0.83, "support": 300} for c in classes
            },
            "confusion_matrix": {"labels": classes, "matrix": [[250, 50], [51, 249]]},
        },
        artifact_key=f"tenants/{org.pk}/models/bench.tar.gz",
        artifact_bytes=123_456,
        artifact_sha256="0" * 64,
    )
    key = api_key_create(
        organization=org, name="bench", created_by=owner, actor=Actor(user_id=owner.pk)
    ).secret
    return model.pk, key


def queries_per_request(path: str, key: str, n: int = 20) -> float:
    """SQL statements per request in steady state (after a warm-up request), in this process."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        for _ in range(n):
            assert client.get(path).status_code == 200
    return len(ctx.captured_queries) / n


def pg_counters() -> tuple[int, int]:
    """(sessions, committed transactions) PostgreSQL has counted for this database so far."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(
            "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        sessions, commits = cur.fetchone()
    return int(sessions), int(commits)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two routes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (make run: 2)")
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="serve with TRAINYARD_REQUEST_CACHE_SECONDS=0 (every request reads its rows)",
    )
    args = parser.parse_args()
    # `make bench` runs on a bare machine too (SQLite); say why nothing was measured.
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        print("control plane: skipped, needs DATABASE_URL=postgres://… and REDIS_URL")
        return 0
    if not settings.REDIS_URL:
        print("control plane: skipped, needs REDIS_URL (the rate limiter is on the path)")
        return 0
    model_id, key = seed()
    path = f"/v1/models/{model_id}"
    per_request = queries_per_request(path, key)
    with override_settings(TRAINYARD_REQUEST_CACHE_SECONDS=0):
        uncached = queries_per_request(path, key)
    env = {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": settings.REDIS_URL}
    if args.no_cache:
        env["TRAINYARD_REQUEST_CACHE_SECONDS"] = "0"
    results: dict[str, list[WrkResult]] = {"healthz": [], "model": []}
    pg: dict[str, list[tuple[float, float]]] = {"healthz": [], "model": []}
    with tempfile.TemporaryDirectory() as logs, Stack(env=env, log_dir=Path(logs)) as stack:
        stack.start_web(workers=args.workers)
        stack.wait_web()
        routes = {
            "healthz": (stack.base_url + "/healthz", {}),
            "model": (stack.base_url + path, {"Authorization": f"Bearer {key}"}),
        }
        for url, headers in routes.values():  # warm every worker (imports, connections)
            wrk(url, duration=2, connections=args.connections, headers=headers)
        connection.close()  # this process's own session must not count below
        for _ in range(args.rounds):
            for name, (url, headers) in routes.items():
                before = pg_counters()
                connection.close()
                r = wrk(url, duration=args.duration, connections=args.connections, headers=headers)
                time.sleep(1.2)  # backends report their counters at most once a second
                after = pg_counters()
                connection.close()
                results[name].append(r)
                # -1: the counters query itself opened one session and committed one transaction.
                pg[name].append(
                    (
                        (after[0] - before[0] - 1) / r.requests,
                        (after[1] - before[1] - 1) / r.requests,
                    )
                )
    print(
        f"control plane: gunicorn {args.workers} sync workers"
        f"{' (request caches off)' if args.no_cache else ''}, wrk {args.connections} connections, "
        f"{args.rounds} x {args.duration} s per route, {os.cpu_count()} CPUs"
    )
    print(
        f"{'route':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} "
        f"{'PG sessions/req':>16} {'PG xacts/req':>13}"
    )
    mean_rps = {}
    for name, label in (("healthz", "/healthz"), ("model", "GET /v1/models/{id}")):
        rs = results[name]
        mean_rps[name] = statistics.mean(r.rps for r in rs)
        print(
            f"{label:<22} {mean_rps[name]:>8.0f} "
            f"{statistics.median(r.p50_ms for r in rs):>8.2f} "
            f"{statistics.median(r.p99_ms for r in rs):>8.2f} "
            f"{sum(r.non_2xx + r.socket_errors for r in rs):>8} "
            f"{statistics.mean(s for s, _ in pg[name]):>16.3f} "
            f"{statistics.mean(x for _, x in pg[name]):>13.2f}"
        )
    # Each round runs the two routes back to back, so its ratio compares like with like even
    # when the machine's load drifts between rounds (other processes share these cores).
    ratios = [m.rps / h.rps for h, m in zip(results["healthz"], results["model"], strict=True)]
    ratio = statistics.median(ratios)
    print(
        "per round, req/s model / healthz: "
        + ", ".join(
            f"{m.rps:.0f}/{h.rps:.0f}"
            for h, m in zip(results["healthz"], results["model"], strict=True)
        )
    )
    print(
        f"SQL statements per GET /v1/models/{{id}} (in process): {per_request:.2f} with the "
        f"request caches warm (the steady state), {uncached:.2f} when they miss (caches off)"
    )
    print(
        f"ratio models / healthz (median of rounds): {ratio:.2f}; of the means: "
        f"{mean_rps['model'] / mean_rps['healthz']:.2f} "
        f"(goal >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
