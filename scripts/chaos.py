"""`make chaos`: Trainyard under faults, on loopback, with its own PostgreSQL and Redis.

Bounded and self-contained: it initialises a private PostgreSQL cluster (``initdb`` under
``var/chaos/pg``, port ``CHAOS_PG_PORT``) and a private ``redis-server`` (AOF as in
docker-compose, port ``CHAOS_REDIS_PORT``), migrates, and starts the stack with
:mod:`scripts.stack` pointed at them: gunicorn behind the public data-plane replica, a second
replica, two training workers and the maintenance worker with beat. Nothing shared is touched,
so it may kill and restart every one of its services.

Then, on 3 tenants (pro plan, seeded through the services; datasets uploaded and jobs submitted
over the API with idempotency keys), ``CHAOS_JOBS`` short text trainings (1–3 epochs) run while
client threads send a steady stream of predictions (API keys, both replicas) to the models
already trained. During the run it SIGKILLs training pool children and whole training workers
(``CHAOS_WORKER_KILLS`` ≥ 5 in all), SIGKILLs each data-plane replica once and starts it again,
SIGKILLs Redis and restarts it, and stops PostgreSQL (``-m immediate``, a crash) and starts it
again, recording each outage window. Then a memory phase: one training pool child through
``CHAOS_MEM_TRAININGS`` trainings, and one data-plane replica through
``CHAOS_MEM_PREDICTIONS`` predictions over up to ``CHAOS_MEM_MODELS`` models, their RSS sampled.

Checks (each a row of the printed table; the exit code is 1 when any fails):

- every job is terminal (succeeded, or failed/cancelled with an error code), none stuck;
- exactly one model per succeeded job, none for the others;
- usage events match succeeded jobs exactly (one per training meter per job, none other);
- platform failures (``platform``, ``worker_lost``) are unbilled: no events, no charge;
- every answered prediction is metered exactly once: per tenant, the inputs and requests of the
  200 answers counted client-side equal the ledger after the last flush;
- no 5xx but 503, and those only inside the outage windows; no connection error outside them;
- a job whose attempt died after completing epoch k resumes with ``resumed_from_epoch: k`` in its
  events under the same id, does not train epochs 1..k again, and bills each kept epoch once;
- the training pool child and the replica stay under ``CHAOS_TRAIN_RSS_MB`` /
  ``CHAOS_SERVE_RSS_MB``.

Knobs (environment): ``CHAOS_SHORT=1`` (a CI-sized run, a few minutes), ``CHAOS_JOBS``,
``CHAOS_SECONDS`` (bound on the fault run after submission), ``CHAOS_FAULT_GAP`` (seconds
between faults), ``CHAOS_WORKER_KILLS``, ``CHAOS_MEM_TRAININGS``, ``CHAOS_MEM_PREDICTIONS``,
``CHAOS_MEM_MODELS``, ``CHAOS_TRAIN_RSS_MB``, ``CHAOS_SERVE_RSS_MB``,
``CHAOS_MODEL_CACHE_BYTES`` (the memory replica's model LRU budget), ``CHAOS_PG_PORT``,
``CHAOS_REDIS_PORT``, ``CHAOS_SEED``, ``CHAOS_GRACE`` (seconds after a service is back that
still count as its outage), ``CHAOS_KEEP=1`` (keep the run's database files). A JSON report
goes to ``var/chaos/<run>/report.json`` (and to ``CHAOS_REPORT`` when set), the processes'
logs beside it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.stack import Stack, free_port  # noqa: E402

PG_BIN = Path(os.environ.get("CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SHORT = os.environ.get("CHAOS_SHORT", "") not in ("", "0", "false")


def knob(name: str, full: float, short: float) -> float:
    """``CHAOS_<name>`` from the environment, else the full or the short run's default."""
    raw = os.environ.get(f"CHAOS_{name}")
    return float(raw) if raw else (short if SHORT else full)


JOBS = int(knob("JOBS", 60, 9))
SECONDS = knob("SECONDS", 900, 240)
FAULT_GAP = knob("FAULT_GAP", 10, 3)
WORKER_KILLS = int(knob("WORKER_KILLS", 6, 5))
MEM_TRAININGS = int(knob("MEM_TRAININGS", 50, 5))
MEM_PREDICTIONS = int(knob("MEM_PREDICTIONS", 5000, 300))
MEM_MODELS = int(knob("MEM_MODELS", 50, 10))
TRAIN_RSS_MB = knob("TRAIN_RSS_MB", 1500, 1500)
SERVE_RSS_MB = knob("SERVE_RSS_MB", 1200, 1200)
MODEL_CACHE_BYTES = int(knob("MODEL_CACHE_BYTES", 2 * 1024**2, 2 * 1024**2))
SEED = int(knob("SEED", 0, 0))
# How long after a service is back its dependants may still answer 503 (reconnects, readiness).
GRACE_S = knob("GRACE", 10, 4)
TENANTS = 3
TEXTS = ["great film, loved it", "awful, boring", "very good value", "broke at once", "superb"]


def log(msg: str = "") -> None:
    print(time.strftime("%H:%M:%S ") + msg, flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(name: str, default: int) -> int:
    want = int(os.environ.get(f"CHAOS_{name}", default))
    return want if port_free(want) else free_port()


# --------------------------------------------------------------------------- private services


class Postgres:
    """A private PostgreSQL cluster (trust auth, loopback only) under ``root``.

    Run as root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` user (PostgreSQL refuses
    root). ``crash()`` is ``pg_ctl stop -m immediate`` (no checkpoint; recovery on start)."""

    def __init__(self, root: Path, port: int) -> None:
        # The postgres user must reach its data directory, and a checkout may sit below a
        # folder only root can enter (a CI clone under a 0700 mktemp directory): run as root,
        # the cluster lives in a fresh directory of its own under /tmp (world-traversable).
        self.temporary = os.geteuid() == 0
        if self.temporary:
            root = Path(tempfile.mkdtemp(prefix="trainyard-chaos-pg-", dir="/tmp"))
        self.root = root
        self.data = root / "data"
        self.sock = root / "sock"
        self.port = port
        self.url = f"postgres://postgres@127.0.0.1:{port}/trainyard"

    def _as_pg(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def init(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.sock.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        subprocess.run(
            self._as_pg(
                [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
                + ["-E", "UTF8", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        self.start()
        import psycopg

        with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE trainyard")

    def start(self) -> None:
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sock} "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            self._as_pg(
                [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts]
                + ["-l", str(self.root / "server.log"), "-w", "-t", "60", "start"]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            self._as_pg([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )

    def crash(self) -> None:
        self.stop("immediate")


class Redis:
    """A private ``redis-server`` with docker-compose's persistence (AOF, fsync every second,
    noeviction); ``crash()`` SIGKILLs it (the AOF holds every acknowledged write)."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--dir", str(self.root), "--appendonly", "yes", "--appendfsync", "everysec"]
        argv += ["--maxmemory-policy", "noeviction", "--save", "", "--daemonize", "no"]
        out = open(self.root / "redis.log", "ab")
        self.proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        import redis

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=1).ping():
                    return
            except redis.RedisError:
                time.sleep(0.1)
        raise RuntimeError("private redis-server did not answer")

    def crash(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- process helpers


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc; no psutil here)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------- the record


@dataclass
class Record:
    """Everything the clients saw: per request (time, kind, status or exception name), the
    200 answers' inputs and requests per tenant, requests cut with no answer, and the
    outage windows (label, start, end) in ``time.monotonic()``."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    responses: list[tuple[float, str, str]] = field(default_factory=list)
    ok_inputs: Counter = field(default_factory=Counter)
    ok_requests: Counter = field(default_factory=Counter)
    ok_by_second: Counter = field(default_factory=Counter)  # (org, unix second) -> inputs
    cut_inputs: Counter = field(default_factory=Counter)
    wrong_answers: int = 0
    cold_starts: int = 0
    windows: list[list[Any]] = field(default_factory=list)
    faults: list[tuple[float, str]] = field(default_factory=list)

    def note(self, kind: str, outcome: str) -> None:
        with self.lock:
            self.responses.append((time.monotonic(), kind, outcome))

    def open_window(self, label: str) -> list[Any]:
        w: list[Any] = [label, time.monotonic(), None]
        with self.lock:
            self.windows.append(w)
            self.faults.append((w[1], label))
        return w

    def inside(self, t: float) -> bool:
        return any(w[1] <= t <= (w[2] if w[2] is not None else float("inf")) for w in self.windows)


class Http:
    """A requests session for one tenant's API key that records every outcome in ``rec``."""

    def __init__(self, base: str, key: str, rec: Record) -> None:
        self.base = base
        self.key = key
        self.rec = rec
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"
        self.last = ""  # the last call's outcome: a status code, "refused" or an exception name

    def call(self, kind: str, method: str, path: str, base: str | None = None, **kw: Any):
        try:
            r = self.s.request(method, (base or self.base) + path, timeout=90, **kw)
        except requests.RequestException as exc:
            refused = "NewConnectionError" in repr(exc) or "Connection refused" in repr(exc)
            self.last = "refused" if refused else type(exc).__name__
            self.rec.note(kind, self.last)
            self.s = requests.Session()
            self.s.headers["Authorization"] = f"Bearer {self.key}"
            return None
        self.last = str(r.status_code)
        self.rec.note(kind, self.last)
        return r


def retry_post(http: Http, kind: str, path: str, expect: int, stop_at: float, **kw: Any) -> dict:
    """POST with one Idempotency-Key until ``expect`` (a 503, a 409 'still processing' or a
    cut connection is retried with the same key, so nothing is created twice)."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    while time.monotonic() < stop_at:
        files = kw.pop("files_factory", None)
        extra = dict(kw)
        if files is not None:
            kw["files_factory"] = files
            extra["files"] = files()
        r = http.call(kind, "POST", path, headers=headers, **extra)
        if r is not None and r.status_code == expect:
            return r.json()
        if r is not None and r.status_code not in (409, 429, 503) and r.status_code < 500:
            raise RuntimeError(f"POST {path} -> {r.status_code}: {r.text[:500]}")
        time.sleep(0.5)
    raise TimeoutError(f"POST {path} never answered {expect}")


# --------------------------------------------------------------------------- the run


def db_retry(fn, *args: Any, tries: int = 60, **kw: Any):
    """Call an ORM function, retrying while our own PostgreSQL is down (its restart)."""
    from django.db import DatabaseError, close_old_connections, connection

    for i in range(tries):
        try:
            return fn(*args, **kw)
        except DatabaseError:
            if i == tries - 1:
                raise
            connection.close()
            close_old_connections()
            time.sleep(1)
    return None


def text_dataset(kind: str, rnd: random.Random) -> bytes:
    """A tiny text CSV: ``small`` 60 generated rows (2 classes), ``long`` 1,000 sentiment
    sentences from data/text (epochs long enough to be killed inside a job)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["text", "label"])
    if kind == "small":
        good = ["great film", "loved it", "excellent value", "works well", "very good"]
        bad = ["terrible film", "hated it", "awful value", "broke quickly", "very bad"]
        for i in range(30):
            w.writerow([f"{good[i % 5]} {rnd.randint(0, 999)}", "positive"])
            w.writerow([f"{bad[i % 5]} {rnd.randint(0, 999)}", "negative"])
    else:
        src = Path("/work/shared/data/text/sentiment_labelled_sentences.csv")
        if not src.exists():
            src = ROOT / "data/text/sentiment_labelled_sentences.csv"
        with open(src, newline="") as fh:
            rows = list(csv.DictReader(fh))
        rnd.shuffle(rows)
        keys = list(rows[0].keys())
        for row in rows[:1000]:
            w.writerow([row[keys[0]], row[keys[1]]])
    return buf.getvalue().encode()


@dataclass
class Tenant:
    slug: str
    org_id: str
    key: str
    http: Http
    datasets: dict[str, str] = field(default_factory=dict)
    jobs: list[str] = field(default_factory=list)


class Chaos:
    def __init__(self) -> None:
        self.run_dir = ROOT / "var" / "chaos" / time.strftime("%Y%m%d-%H%M%S")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Per run, so two runs (say a CI job and a developer's) never share a cluster.
        self.pg = Postgres(self.run_dir / "pg", pick_port("PG_PORT", 55432))
        self.redis = Redis(self.run_dir / "redis", pick_port("REDIS_PORT", 56379))
        self.rec = Record()
        self.rnd = random.Random(SEED)
        self.stack: Stack | None = None
        self.tenants: list[Tenant] = []
        self.stop_load = threading.Event()
        self.serve2_port = free_port()
        self.figures: dict[str, Any] = {}
        self.checks: list[tuple[str, bool, str]] = []
        self.whole_kills = 0

    # ------------------------------------------------------------------ setup

    def start_services(self) -> None:
        shutil.rmtree(self.redis.root, ignore_errors=True)
        log(
            f"private PostgreSQL on :{self.pg.port}, Redis on :{self.redis.port}; logs {self.run_dir}"
        )
        self.pg.init()
        self.redis.start()
        env = {
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis.url,
            "TRAINYARD_STORAGE_DIR": str(self.run_dir / "storage"),
            "TRAINYARD_MODEL_CACHE_DIR": str(self.run_dir / "model-cache"),
            "TRAINYARD_HEARTBEAT_STALE_SECONDS": "6",
            "TRAINYARD_REAPER_INTERVAL_SECONDS": "2",
            "CELERY_VISIBILITY_TIMEOUT": "120",
            "TRAINYARD_PREDICT_TIMEOUT_SECONDS": "60",
            "TRAINYARD_SERVE_DEADLINE_SECONDS": "60",
            "CONN_MAX_AGE": "60",
        }
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saas.settings")
        self.stack = Stack(env=env, log_dir=self.run_dir)
        t = time.monotonic()
        self.stack.manage("migrate", "--noinput")
        self.figures["migrate_s"] = round(time.monotonic() - t, 1)
        import django

        django.setup()

    def seed(self) -> None:
        from saas.apikeys.services import api_key_create
        from saas.billing.models import Plan
        from saas.common.actor import Actor
        from saas.tenancy.services import organization_create

        # Our own database: no plan limit may refuse the load (the checks are about faults).
        Plan.objects.all().update(
            requests_per_key=10**9,
            requests_per_organization=10**9,
            predictions_per_key=10**9,
            predictions_per_organization=10**9,
            max_active_jobs=10**6,
            max_running_jobs=1,
        )
        assert self.stack is not None
        for i in range(TENANTS):
            slug = f"chaos-{i}"
            org = organization_create(
                slug=slug,
                name=f"Chaos {i}",
                owner_email=f"{slug}@chaos.test",
                plan="pro",
                actor=Actor.system(),
            )
            key = api_key_create(organization=org, name="chaos", actor=Actor.system()).secret
            self.tenants.append(Tenant(slug, org.pk, key, Http(self.stack.base_url, key, self.rec)))

    def start_stack(self) -> None:
        from saas.celery import Queue

        s = self.stack
        assert s is not None
        s.start_web(workers=2)
        s.start_serve()
        s.start_serve(name="serve-2", port=self.serve2_port, upstream=False)
        s.start_worker("train-a", Queue.TRAINING_CPU)
        s.start_worker("train-b", Queue.TRAINING_CPU)
        s.start_worker("maintenance", Queue.MAINTENANCE, beat=True)
        t = time.monotonic()
        s.wait_web(timeout=180)
        s.wait_ready("serve-2", f"http://127.0.0.1:{self.serve2_port}/v2/health/ready", 180)
        self.figures["stack_start_s"] = round(time.monotonic() - t, 1)

    def upload_datasets(self) -> None:
        stop_at = time.monotonic() + 300
        for t in self.tenants:
            for kind in ("small", "long"):
                data = text_dataset(kind, self.rnd)
                body = retry_post(
                    t.http,
                    "api",
                    "/v1/datasets",
                    201,
                    stop_at,
                    files_factory=lambda d=data, k=kind: {"file": (f"{k}.csv", d, "text/csv")},
                    data={"task": "text-classification", "name": f"chaos {kind}"},
                )
                t.datasets[kind] = body["id"]
                while body.get("status") not in (None, "ready"):  # validated off the request
                    time.sleep(0.5)
                    r = t.http.call("api", "GET", f"/v1/datasets/{body['id']}")
                    if r is not None and r.ok:
                        body = r.json()
                    if time.monotonic() > stop_at:
                        raise TimeoutError(f"dataset {body['id']} never ready")

    def submit(self, t: Tenant, *, kind: str, epochs: int, stop_at: float) -> str:
        hp = {"epochs": epochs, "batch_size": 4 if kind == "long" else 8}
        body = retry_post(
            t.http,
            "api",
            "/v1/training-jobs",
            201,
            stop_at,
            json={"dataset": t.datasets[kind], "hyperparameters": hp},
        )
        t.jobs.append(body["id"])
        return body["id"]

    # ------------------------------------------------------------------ load

    def models_of(self) -> dict[str, list[str]]:
        from saas.registry.models import TrainedModel

        def read() -> dict[str, list[str]]:
            out: dict[str, list[str]] = defaultdict(list)
            for mid, org in TrainedModel.objects.unscoped_all_tenants().values_list(
                "id", "organization_id"
            ):
                out[org].append(mid)
            return out

        return db_retry(read)

    def predict_loop(self, t: Tenant, seed: int, models: dict[str, list[str]]) -> None:
        rnd = random.Random(seed)
        bases = [self.stack.base_url, f"http://127.0.0.1:{self.serve2_port}"]  # type: ignore[union-attr]
        http = Http(bases[0], t.key, self.rec)
        i = 0
        while not self.stop_load.is_set():
            mine = models.get(t.org_id) or []
            if not mine:
                time.sleep(0.5)
                continue
            n = rnd.randint(1, 3)
            i += 1
            r = http.call(
                "predict",
                "POST",
                f"/v1/models/{rnd.choice(mine)}/predict",
                base=bases[i % 2],
                json={"inputs": [rnd.choice(TEXTS) for _ in range(n)]},
            )
            if r is None:
                if http.last != "refused":  # sent, then cut: the server may have counted it
                    with self.rec.lock:
                        self.rec.cut_inputs[t.org_id] += n
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                body = r.json()
                with self.rec.lock:
                    if len(body.get("predictions", [])) == n and body["usage"]["predictions"] == n:
                        self.rec.ok_inputs[t.org_id] += n
                        self.rec.ok_requests[t.org_id] += 1
                        self.rec.ok_by_second[(t.org_id, int(time.time()))] += n
                        self.rec.cold_starts += bool(body["usage"].get("cold_start"))
                    else:
                        self.rec.wrong_answers += 1
            else:
                time.sleep(0.05)
            time.sleep(0.03)  # steady, not flat out: two cores are shared

    # ------------------------------------------------------------------ faults

    def running_with_epoch(self) -> bool:
        from saas.jobs.models import TrainingJob

        return db_retry(
            lambda: (
                TrainingJob.objects.unscoped_all_tenants()
                .filter(status="running", epoch__gte=1)
                .exists()
            )
        )

    def training_workers(self) -> list[str]:
        assert self.stack is not None
        return [n for n in ("worker-train-a", "worker-train-b") if n in self.stack.procs]

    def kill_children(self) -> str:
        """SIGKILL the pool child of every training worker (Celery forks a new one)."""
        assert self.stack is not None
        killed = []
        for name in self.training_workers():
            for c in children(self.stack.procs[name].pid):
                os.kill(c, signal.SIGKILL)
                killed.append(f"{name}:{c}")
        return "pool children " + ", ".join(killed)

    def kill_worker(self) -> str:
        """SIGKILL one whole training worker (its process group) and start it again."""
        assert self.stack is not None
        names = self.training_workers()
        self.whole_kills += 1
        name = names[self.whole_kills % len(names)]  # each worker in turn
        self.stack.kill(name)
        time.sleep(1)
        self.stack.restart(name)
        return f"whole {name}"

    def kill_serve(self, name: str) -> None:
        assert self.stack is not None
        w = self.rec.open_window(f"SIGKILL {name}")
        self.stack.kill(name)
        time.sleep(1)
        self.stack.restart(name)
        url = (
            f"http://127.0.0.1:{self.serve2_port}/v2/health/ready"
            if name == "serve-2"
            else self.stack.base_url + "/v2/health/ready"
        )
        self.stack.wait_ready(name, url, 180)
        time.sleep(GRACE_S)
        w[2] = time.monotonic()

    def restart_redis(self) -> None:
        w = self.rec.open_window("Redis SIGKILL + restart")
        self.redis.crash()
        time.sleep(2)
        self.redis.start()
        time.sleep(GRACE_S)
        w[2] = time.monotonic()

    def restart_pg(self) -> None:
        from django.db import connection

        w = self.rec.open_window("PostgreSQL crash + restart")
        self.pg.crash()
        time.sleep(2)
        self.pg.start()
        connection.close()
        time.sleep(GRACE_S)
        w[2] = time.monotonic()

    def fault_plan(self) -> list[str]:
        worker = ["children" if i % 2 == 0 else "worker" for i in range(WORKER_KILLS)]
        plan = worker[:2] + ["serve-2"] + worker[2:3] + ["redis"] + worker[3:4] + ["serve"]
        plan += worker[4:5] + ["pg"] + worker[5:]
        return plan

    def run_faults(self, stop_at: float) -> None:
        done: Counter = Counter()
        for step in self.fault_plan():
            if time.monotonic() > stop_at:
                break
            time.sleep(FAULT_GAP)
            if step in ("children", "worker"):
                # Aim at an attempt that has finished an epoch (something to resume from).
                wait = time.monotonic() + 20
                while time.monotonic() < wait and not self.running_with_epoch():
                    time.sleep(0.3)
                what = self.kill_children() if step == "children" else self.kill_worker()
                self.rec.faults.append((time.monotonic(), what))
            elif step in ("serve", "serve-2"):
                self.kill_serve(step)
            elif step == "redis":
                self.restart_redis()
            else:
                self.restart_pg()
            done[step] += 1
            log(f"fault: {self.rec.faults[-1][1]}")
        self.figures["faults"] = dict(done)

    # ------------------------------------------------------------------ waiting

    def wait_terminal(self, ids: list[str], stop_at: float) -> None:
        from saas.jobs.models import TrainingJob

        while time.monotonic() < stop_at:
            left = db_retry(
                lambda: (
                    TrainingJob.objects.unscoped_all_tenants()
                    .filter(pk__in=ids)
                    .exclude(status__in=TrainingJob.TERMINAL_STATUSES)
                    .count()
                )
            )
            if not left:
                return
            time.sleep(1)

    def wait_flushed(self, timeout: float = 90) -> bool:
        import redis

        from saas.metering.windows import INDEX_KEY

        r = redis.Redis.from_url(self.redis.url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not r.zcard(INDEX_KEY):
                    time.sleep(1)
                    if not r.zcard(INDEX_KEY):
                        return True
            except redis.RedisError:
                pass
            time.sleep(0.5)
        return False

    # ------------------------------------------------------------------ phases

    def chaos_phase(self) -> list[str]:
        t0 = time.monotonic()
        stop_at = t0 + SECONDS
        # One job per tenant first, so predictions have models before the faults start.
        first = [self.submit(t, kind="small", epochs=1, stop_at=stop_at) for t in self.tenants]
        self.wait_terminal(first, stop_at)
        models = self.models_of()
        loaders = [
            threading.Thread(target=self.predict_loop, args=(t, SEED + i, models), daemon=True)
            for i, t in enumerate(self.tenants)
        ]
        for th in loaders:
            th.start()
        ids = list(first)
        shapes = [("long", 3), ("small", 1), ("small", 2), ("long", 2), ("small", 3)]
        for i in range(JOBS - len(first)):
            kind, epochs = shapes[i % len(shapes)]
            ids.append(
                self.submit(self.tenants[i % TENANTS], kind=kind, epochs=epochs, stop_at=stop_at)
            )
        log(
            f"submitted {len(ids)} jobs in {time.monotonic() - t0:.0f} s; faults every {FAULT_GAP:.0f} s"
        )

        def refresh() -> None:
            while not self.stop_load.is_set():
                try:
                    models.update(self.models_of())
                except Exception:  # noqa: BLE001 - a refresh during the PG outage
                    pass
                time.sleep(2)

        threading.Thread(target=refresh, daemon=True).start()
        self.run_faults(stop_at)
        self.wait_terminal(ids, stop_at)
        self.figures["chaos_phase_s"] = round(time.monotonic() - t0, 1)
        self.stop_load.set()
        for th in loaders:
            th.join(timeout=100)
        return ids

    def memory_phase(self) -> None:
        """One pool child through MEM_TRAININGS trainings; then serve-2 (a fresh replica with
        a small model LRU) through MEM_PREDICTIONS predictions over up to MEM_MODELS models."""
        assert self.stack is not None
        s = self.stack
        if "worker-train-b" in s.procs:
            s.kill("worker-train-b")
        worker = s.procs["worker-train-a"]
        stop_at = time.monotonic() + max(SECONDS, 60 * MEM_TRAININGS)
        ids = [
            self.submit(self.tenants[i % TENANTS], kind="small", epochs=1, stop_at=stop_at)
            for i in range(MEM_TRAININGS)
        ]
        from saas.jobs.models import TrainingJob

        curve: list[tuple[int, float]] = []
        pids: set[int] = set()
        t0 = time.monotonic()
        while time.monotonic() < stop_at:
            done = (
                TrainingJob.objects.unscoped_all_tenants()
                .filter(pk__in=ids, status__in=TrainingJob.TERMINAL_STATUSES)
                .count()
            )
            for c in children(worker.pid):
                pids.add(c)
                mb = rss_mb(c)
                if mb is not None:
                    curve.append((done, mb))
            if done == len(ids):
                break
            if len(curve) % 60 == 0 and curve:
                log(f"  pool child: {done}/{len(ids)} trainings, RSS {curve[-1][1]:.0f} MB")
            time.sleep(0.5)
        ok = (
            TrainingJob.objects.unscoped_all_tenants()
            .filter(pk__in=ids, status="succeeded")
            .count()
        )
        peak = max((mb for _, mb in curve), default=0.0)
        self.figures["mem_training"] = {
            "trainings": len(ids),
            "succeeded": ok,
            "wall_s": round(time.monotonic() - t0, 1),
            "child_pids": len(pids),
            "peak_rss_mb": round(peak, 1),
            "curve_mb": sampled_curve(curve, len(ids)),
        }
        self.checks.append(
            (
                f"training pool child RSS < {TRAIN_RSS_MB:.0f} MB over {len(ids)} trainings",
                0 < peak < TRAIN_RSS_MB and ok == len(ids),
                f"peak {peak:.0f} MB, {ok}/{len(ids)} succeeded, {len(pids)} child pid(s)",
            )
        )

        # serve-2 again, fresh, with a small LRU so 50 models cycle through it.
        s.kill("serve-2")
        s.start_serve(
            name="serve-2",
            port=self.serve2_port,
            upstream=False,
            extra_env={"TRAINYARD_MODEL_CACHE_BYTES": str(MODEL_CACHE_BYTES)},
        )
        base = f"http://127.0.0.1:{self.serve2_port}"
        s.wait_ready("serve-2", base + "/v2/health/ready", 180)
        pid = s.procs["serve-2"].pid
        by_org = self.models_of()
        keys = {t.org_id: t.key for t in self.tenants}
        pairs = [(m, org) for org, ms in by_org.items() for m in ms][:MEM_MODELS]
        rss: list[tuple[int, float]] = []
        tally: Counter = Counter()
        counter = iter(range(MEM_PREDICTIONS))
        lock = threading.Lock()
        # Two sweeps over the models, a run of predictions each: every model is loaded (and,
        # with the small LRU, evicted) twice. Round-robin one by one would make every request
        # a cold load and measure load latency, not memory.
        run = max(1, MEM_PREDICTIONS // (2 * max(1, len(pairs))))
        t0 = time.monotonic()
        give_up = t0 + SECONDS

        def client(org_https: dict[str, Http]) -> None:
            while time.monotonic() < give_up:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                if i % 500 == 0:
                    log(f"  replica: {i} predictions, RSS {rss_mb(pid) or 0:.0f} MB")
                model, org = pairs[(i // run) % len(pairs)]
                r = org_https[org].call(
                    "predict",
                    "POST",
                    f"/v1/models/{model}/predict",
                    json={"inputs": [TEXTS[i % 5]]},
                )
                if r is not None and r.status_code == 200:
                    with self.rec.lock:
                        tally["ok"] += 1
                        self.rec.ok_inputs[org] += 1
                        self.rec.ok_requests[org] += 1
                        self.rec.ok_by_second[(org, int(time.time()))] += 1
                else:
                    with self.rec.lock:
                        tally["bad"] += 1
                if i % 50 == 0:
                    mb = rss_mb(pid)
                    if mb is not None:
                        with lock:
                            rss.append((i, mb))

        # Four clients (each with its own sessions): the replica's concurrency, not its latency.
        threads = [
            threading.Thread(
                target=client, args=({org: Http(base, key, self.rec) for org, key in keys.items()},)
            )
            for _ in range(4)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ok_n, bad = tally["ok"], tally["bad"] + MEM_PREDICTIONS - tally["ok"] - tally["bad"]
        mb = rss_mb(pid)
        if mb is not None:
            rss.append((MEM_PREDICTIONS, mb))
        peak = max((m for _, m in rss), default=0.0)
        self.figures["mem_serve"] = {
            "predictions": MEM_PREDICTIONS,
            "answered_200": ok_n,
            "models": len(pairs),
            "cache_bytes": MODEL_CACHE_BYTES,
            "wall_s": round(time.monotonic() - t0, 1),
            "peak_rss_mb": round(peak, 1),
            "curve_mb": sampled_curve(rss, MEM_PREDICTIONS),
            # The second sweep loads the same models again: what it adds was not given back
            # by the LRU's evictions of the first.
            "second_sweep_growth_mb": round(
                max((m for i, m in rss if i >= MEM_PREDICTIONS // 2), default=0.0)
                - max((m for i, m in rss if i < MEM_PREDICTIONS // 2), default=0.0),
                1,
            ),
        }
        self.checks.append(
            (
                f"data-plane replica RSS < {SERVE_RSS_MB:.0f} MB over {MEM_PREDICTIONS} predictions",
                0 < peak < SERVE_RSS_MB and bad == 0 and len(pairs) >= min(MEM_MODELS, 2),
                f"peak {peak:.0f} MB, {ok_n} answered, {bad} not, {len(pairs)} models",
            )
        )

    # ------------------------------------------------------------------ checks

    def check(self, ids: list[str]) -> None:
        from django.db.models import Sum

        from saas.jobs.models import JobEvent, TrainingJob
        from saas.metering.models import Meter, UsageEvent
        from saas.registry.models import TrainedModel

        jobs = {j.pk: j for j in TrainingJob.objects.unscoped_all_tenants().filter(pk__in=ids)}
        statuses = Counter(j.status for j in jobs.values())
        codes = Counter(
            (j.error or {}).get("code", "?") for j in jobs.values() if j.status == "failed"
        )
        self.figures["jobs"] = {"submitted": len(ids), **statuses, "failed_codes": dict(codes)}
        stuck = [j.pk for j in jobs.values() if j.status not in TrainingJob.TERMINAL_STATUSES]
        no_reason = [
            j.pk
            for j in jobs.values()
            if j.status in ("failed", "cancelled")
            and j.status == "failed"
            and not (j.error or {}).get("code")
        ]
        self.checks.append(
            (
                f"every job terminal ({len(ids)} jobs), failures with a reason",
                not stuck and not no_reason and len(jobs) == len(ids),
                f"{dict(statuses)}; failed codes {dict(codes)}; stuck {stuck[:5]}",
            )
        )

        succeeded = {pk for pk, j in jobs.items() if j.status == "succeeded"}
        per_job = Counter(
            TrainedModel.objects.unscoped_all_tenants()
            .filter(job_id__in=ids)
            .values_list("job_id", flat=True)
        )
        bad_models = [pk for pk in ids if per_job.get(pk, 0) != (1 if pk in succeeded else 0)]
        self.checks.append(
            (
                "exactly one model per succeeded job, none for others",
                not bad_models,
                f"{sum(per_job.values())} models for {len(succeeded)} succeeded; wrong: {bad_models[:5]}",
            )
        )

        events = UsageEvent.objects.unscoped_all_tenants().filter(
            source_type="training_job", source_id__in=ids
        )
        per = Counter((e.source_id, e.meter) for e in events)
        meters = (Meter.TRAINING_COMPUTE_SECONDS, Meter.TRAINING_EXAMPLES)
        mismatched = [
            pk
            for pk in ids
            if any(per.get((pk, m), 0) != (1 if pk in succeeded else 0) for m in meters)
            and not (jobs[pk].status == "failed" and (jobs[pk].error or {}).get("code") == "input")
        ]
        self.checks.append(
            (
                "usage events match succeeded jobs exactly",
                not mismatched,
                f"{len(events)} training events for {len(succeeded)} succeeded jobs; wrong: {mismatched[:5]}",
            )
        )

        platform = [
            pk
            for pk, j in jobs.items()
            if j.status == "failed" and (j.error or {}).get("code") in ("platform", "worker_lost")
        ]
        billed = [
            pk
            for pk in platform
            if any(per.get((pk, m), 0) for m in meters)
            or str((jobs[pk].usage or {}).get("charge", "0")) not in ("0", "0.00", "None")
        ]
        self.checks.append(
            (
                "platform failures unbilled",
                not billed,
                f"{len(platform)} platform failures, billed: {billed[:5]}",
            )
        )

        # Predictions: the ledger against the 200s counted client-side, per tenant.
        flushed = self.wait_flushed()
        time.sleep(2)
        rows = []
        ok = flushed and self.rec.wrong_answers == 0
        for t in self.tenants:
            qs = UsageEvent.objects.for_tenant(t.org_id).filter(meter=Meter.PREDICTIONS)
            inputs = int(qs.aggregate(n=Sum("quantity"))["n"] or 0)
            reqs = sum(int(e.dimensions.get("requests", 0)) for e in qs)
            ok = (
                ok
                and inputs == self.rec.ok_inputs[t.org_id]
                and reqs == self.rec.ok_requests[t.org_id]
            )
            rows.append(
                f"{t.slug}: 200s {self.rec.ok_requests[t.org_id]} req/{self.rec.ok_inputs[t.org_id]} in, "
                f"ledger {reqs}/{inputs}, cut {self.rec.cut_inputs[t.org_id]} in"
            )
        # serve's commit writer keeps the commits whose reply died with a Redis connection
        # and, on the next one, re-sends those its mark shows not applied ("re-sending N").
        resent = 0
        for path in self.run_dir.glob("serve*.log"):
            for line in path.read_text(errors="replace").splitlines():
                if "metering commits whose reply was lost" in line:
                    resent += int(line.split("re-sending ")[1].split()[0])
        self.figures["serve_resent_commits"] = resent
        if not ok:
            self.figures["metering_divergence"] = self.metering_divergence()
        self.checks.append(
            (
                "every answered prediction metered exactly once",
                ok,
                "; ".join(rows)
                + ("" if flushed else "; windows never flushed")
                + (f"; {self.rec.wrong_answers} wrong answers" if self.rec.wrong_answers else ""),
            )
        )

        # Statuses: 5xx only 503 and only inside the windows; no connection error outside.
        outside: Counter = Counter()
        inside: Counter = Counter()
        for at, kind, outcome in self.rec.responses:
            (inside if self.rec.inside(at) else outside)[f"{kind}:{outcome}"] += 1
        bad_out = {k: v for k, v in outside.items() if not k.split(":")[1].startswith(("2", "4"))}
        bad_in = {
            k: v
            for k, v in inside.items()
            if k.split(":")[1].startswith("5") and not k.endswith(":503")
        }
        self.figures["responses_outside_windows"] = dict(outside)
        self.figures["responses_inside_windows"] = dict(inside)
        self.checks.append(
            (
                "no 5xx but 503, and only inside outage windows",
                not bad_out and not bad_in,
                f"outside: {bad_out or 'clean'}; inside, not 503: {bad_in or 'none'}",
            )
        )
        four = {k: v for k, v in outside.items() if k.split(":")[1].startswith("4")}
        self.checks.append(("no 4xx to valid requests", not four, str(four or "none")))

        # Resume: an attempt that died after epoch k >= 1 is resumed from k by the next one.
        evs: dict[str, list] = defaultdict(list)
        for e in (
            JobEvent.objects.unscoped_all_tenants()
            .filter(job_id__in=ids)
            .order_by("created_at", "id")
        ):
            evs[e.job_id].append(e)
        usage_secs = {
            e.source_id: float(e.quantity)
            for e in events
            if e.meter == Meter.TRAINING_COMPUTE_SECONDS
        }
        resumable = resumed_ok = 0
        problems: list[str] = []
        restarted = 0
        for pk, lst in evs.items():
            attempts = split_attempts(lst)
            if len(attempts) < 2:
                continue
            restarted += 1
            for prev, nxt in zip(attempts, attempts[1:], strict=False):
                k = max((e.data.get("epoch", 0) for e in prev if e.type == "epoch"), default=0)
                if k < 1:
                    continue
                resumable += 1
                marks = [
                    e.data.get("resumed_from_epoch") for e in nxt if "resumed_from_epoch" in e.data
                ]
                first_epoch = min(
                    (e.data.get("epoch", 0) for e in nxt if e.type == "epoch"), default=None
                )
                if marks and marks[0] == k and (first_epoch is None or first_epoch == k + 1):
                    resumed_ok += 1
                else:
                    problems.append(
                        f"{pk}: died after epoch {k}, next attempt marks {marks}, first epoch {first_epoch}"
                    )
            if jobs[pk].status == "succeeded" and pk in usage_secs:
                why = billing_problem(attempts, usage_secs[pk])
                if why:
                    problems.append(f"{pk}: {why}")
        self.figures["restarted_jobs"] = restarted
        self.figures["resumable_restarts"] = resumable
        self.checks.append(
            (
                "killed jobs resume from their last epoch (resumed_from_epoch), epochs billed once",
                resumable > 0 and not problems,
                f"{resumed_ok}/{resumable} restarts after epoch >= 1 resumed; {restarted} jobs restarted; "
                + ("; ".join(problems[:3]) if problems else "ok"),
            )
        )
        self.figures["predictions_200"] = sum(self.rec.ok_requests.values())
        self.figures["predictions_cold_starts"] = self.rec.cold_starts
        offset = time.time() - time.monotonic()
        self.figures["windows"] = [
            (
                w[0],
                time.strftime("%H:%M:%S", time.gmtime(w[1] + offset)),
                round(w[2] - w[1], 1) if w[2] else None,
            )
            for w in self.rec.windows
        ]
        kills = sum(1 for _, what in self.rec.faults if what.startswith(("pool", "whole")))
        self.checks.append(
            (
                "faults injected (>= 5 worker kills, 2 serve, 1 Redis, 1 PostgreSQL)",
                kills >= 5 and len(self.rec.windows) >= 4,
                f"{kills} worker kills, windows {[w[0] for w in self.rec.windows]}",
            )
        )

    def metering_divergence(self) -> list[str]:
        """Where the ledger parts from the 200s counted client-side: per tenant, the seconds at
        which the cumulative difference (ledger - client) changes and stays changed for 3 s
        (a request answered just after its window's end shifts it for one second only),
        with the fault window, if any, around each."""
        from saas.metering.models import Meter, UsageEvent

        offset = time.time() - time.monotonic()
        out: list[str] = []
        for t in self.tenants:
            ledger: Counter = Counter()
            for e in UsageEvent.objects.for_tenant(t.org_id).filter(meter=Meter.PREDICTIONS):
                ledger[int(e.occurred_at.timestamp())] += int(e.quantity)
            client = Counter(
                {sec: n for (org, sec), n in self.rec.ok_by_second.items() if org == t.org_id}
            )
            secs = sorted(set(ledger) | set(client))
            if not secs:
                continue
            cum, diffs = 0, {}
            for sec in range(secs[0], secs[-1] + 1):
                cum += ledger.get(sec, 0) - client.get(sec, 0)
                diffs[sec] = cum
            prev = 0
            for sec in range(secs[0], secs[-1] + 1):
                later = [diffs.get(sec + d, diffs[sec]) for d in range(3)]
                if diffs[sec] != prev and len(set(later)) == 1:
                    around = [
                        w[0]
                        for w in self.rec.windows
                        if w[1] + offset - 2 <= sec <= (w[2] or float("inf")) + offset + 2
                    ]
                    out.append(
                        f"{t.slug} {time.strftime('%H:%M:%S', time.gmtime(sec))}Z: ledger - client "
                        f"{prev:+d} -> {diffs[sec]:+d} ({', '.join(around) or 'no fault window'})"
                    )
                    prev = diffs[sec]
        return out[:20]

    # ------------------------------------------------------------------ main

    def report(self) -> int:
        width = max(len(n) for n, _, _ in self.checks)
        print()
        print(f"{'check':<{width}}  result  detail")
        print("-" * (width + 60))
        for name, ok, detail in self.checks:
            print(f"{name:<{width}}  {'PASS' if ok else 'FAIL':<6}  {detail}")
        print()
        print("figures:")
        for k, v in self.figures.items():
            print(f"  {k}: {json.dumps(v, default=str)}")
        (self.run_dir / "report.json").write_text(
            json.dumps(
                {
                    "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
                    "figures": self.figures,
                },
                indent=2,
                default=str,
            )
        )
        if os.environ.get("CHAOS_REPORT"):
            shutil.copyfile(self.run_dir / "report.json", os.environ["CHAOS_REPORT"])
        failed = [n for n, ok, _ in self.checks if not ok]
        print(
            f"\n{len(self.checks) - len(failed)}/{len(self.checks)} checks passed; report {self.run_dir / 'report.json'}"
        )
        return 1 if failed else 0

    def close(self) -> None:
        self.stop_load.set()
        if self.stack is not None:
            self.stack.stop()
        self.redis.stop()
        self.pg.stop()
        if self.pg.temporary:  # its server log joins the run's logs
            with contextlib.suppress(OSError):
                shutil.copy(self.pg.root / "server.log", self.run_dir / "pg-server.log")
        if not os.environ.get("CHAOS_KEEP"):  # the logs stay; the databases' files go
            if self.pg.temporary:
                shutil.rmtree(self.pg.root, ignore_errors=True)
            for path in (
                self.pg.data,
                self.redis.root,
                self.run_dir / "storage",
                self.run_dir / "model-cache",
            ):
                shutil.rmtree(path, ignore_errors=True)


def split_attempts(events: list) -> list[list]:
    """A job's events cut at each ``started`` event: one list per attempt (started first)."""
    out: list[list] = []
    for e in events:
        if e.type == "started":
            out.append([e])
        elif out:
            out[-1].append(e)
    return out


def billing_problem(attempts: list[list], billed: float) -> str:
    """Why a succeeded job's billed seconds do not count each epoch exactly once, or ''.

    The epochs that count are the last attempt's plus, when it resumed from epoch k, epochs
    1..k of the attempts before it (each epoch's length: from the event before it in its
    attempt). The bill must cover those kept epochs (x 0.9) and not exceed them by more than
    the final attempt's own setup (its wall from ``started`` to ``succeeded``) + 1 s + 5%:
    an epoch lost with a killed attempt, or trained twice, is not the tenant's.
    """
    kept: dict[int, float] = {}
    for att in attempts:
        prev_t = att[0].created_at
        for e in att[1:]:
            if e.type == "epoch":
                kept[int(e.data.get("epoch", 0))] = (e.created_at - prev_t).total_seconds()
            prev_t = e.created_at
    final = attempts[-1]
    final_epochs = {int(e.data.get("epoch", 0)) for e in final if e.type == "epoch"}
    final_wall = (final[-1].created_at - final[0].created_at).total_seconds()
    earlier = sum(s for ep, s in kept.items() if ep not in final_epochs)
    need = sum(kept.values())
    if billed < 0.9 * need - 0.5:
        return f"billed {billed:.1f} s < the {need:.1f} s of its kept epochs"
    if billed > (final_wall + earlier) * 1.05 + 1:
        return f"billed {billed:.1f} s > final attempt {final_wall:.1f} s + kept earlier epochs {earlier:.1f} s"
    return ""


def sampled_curve(
    points: list[tuple[int, float]], total: int, n: int = 11
) -> list[tuple[int, float]]:
    """``points`` (progress, MB) reduced to the max MB at about ``n`` progress marks."""
    if not points:
        return []
    step = max(1, total // (n - 1))
    best: dict[int, float] = {}
    for done, mb in points:
        mark = min(total, (done // step) * step)
        best[mark] = max(best.get(mark, 0.0), mb)
    return [(k, round(v)) for k, v in sorted(best.items())]


def main() -> int:
    chaos = Chaos()

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    rc = 1
    try:
        t0 = time.monotonic()
        chaos.start_services()
        chaos.seed()
        chaos.start_stack()
        chaos.upload_datasets()
        log(f"stack up ({chaos.figures['stack_start_s']} s); {JOBS} jobs, {TENANTS} tenants")
        ids = chaos.chaos_phase()
        log("chaos phase over; memory phase")
        chaos.memory_phase()
        chaos.check(ids)
        chaos.figures["total_s"] = round(time.monotonic() - t0, 1)
        rc = chaos.report()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut cleanup
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        chaos.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
