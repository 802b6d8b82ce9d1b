"""`make bench-serving`: Trainyard's data plane (`serve`) against BentoML and KServe, one run.

What it does, in order (issue 10, "Benchmark: make bench-serving"):

1. Starts a Stack (web, and a training worker when it must train) on its own database
   (``BENCH_DATABASE_URL``, default ``trainyard_bench``, created and migrated) and Redis db
   (``BENCH_REDIS_URL``, default db 4); creates a ``bench`` plan with limits far above the load,
   tenants A and B on it, and an API key each. Each tenant trains the text model on the shipped
   sentiment sentences through the REST API; A's SavedModel is downloaded
   (``GET /v1/models/{id}/download``) for the peers. The models are cached under var/bench/
   (keyed by the data's SHA-256 and :data:`RECIPE`), so a rerun on the same database skips
   training.
2. Installs BentoML and the KServe model server into var/bench/venvs/ (only if missing), each
   serving the same SavedModel's ``serving_default`` (bench/serving_peers/).
3. Drives every system with wrk (bench/serving_wrk.lua) with the same texts: batch 1 and 32 at
   1, 8 and 64 connections, ``BENCH_SECONDS`` (default 8) a cell. Trainyard is called at
   ``POST /v1/models/{id}/predict`` with a real API key: auth, admission and metering on.
4. Extra Trainyard cells: batching off (``TRAINYARD_SERVE_BATCHING=0``) at 64 connections,
   batch 1; tenant B's p99 at 8 connections, batch 1, alone and while tenant A floods 256 long
   texts a request on 32 connections. The SavedModel in-process is the ceiling.
5. Prints a markdown table and the goals (PASS/FAIL), writes var/bench/serving.json.

Throughput counts only 2xx answers; wrk's latency percentiles include every answer. Every
system is started first and idles while another is measured; each cell is then run on each
system back to back, so a comparison spans a minute of this shared machine, not the whole run.
wrk runs on the same cores. With ``BENCH_ROUNDS`` > 1 the cells repeat and each figure is the
median over rounds. Also reported: the ledger's ``predictions`` for the run against the inputs
the client saw answered (the ledger may exceed it by the requests in flight when wrk stops).

Environment: ``BENCH_SECONDS`` (default 8), ``BENCH_ROUNDS`` (1), ``BENCH_WORKERS`` (processes
per system, 1), ``BENCH_SYSTEMS`` (comma list of trainyard,bentoml,kserve; all),
``BENCH_SERVE_ENV`` (extra environment for serve, ``K=V,K=V``), ``BENCH_DATABASE_URL``,
``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.stack import Stack, free_port  # noqa: E402

BENCH = Path(__file__).resolve().parent
VAR = ROOT / "var" / "bench"
VENVS = VAR / "venvs"
PEERS_DIR = BENCH / "serving_peers"
LUA = BENCH / "serving_wrk.lua"
DATA = ROOT / "data" / "text" / "sentiment_labelled_sentences.csv"
PY = Path(sys.executable)

# How the benchmark's model is trained; part of the cache key (bump it when this changes).
RECIPE = {"version": 1, "hyperparameters": {"epochs": 5}, "seed": 0}
# Peers and what goes into their virtualenvs (the same TensorFlow as Trainyard's lock).
PEER_PACKAGES = {
    "bentoml": ["bentoml==1.4.40"],
    "kserve": ["kserve==0.21.0"],
}
PEER_COMMON = ["tensorflow==2.21.0", "tf-keras==2.21.0"]
BATCHES = (1, 32)
CONNS = (1, 8, 64)
MAX_BATCH = 64  # serve's TRAINYARD_SERVE_MAX_BATCH default; BentoML gets the same
FLOOD_CONNS = 32
FLOOD_INPUTS = 256
FLOOD_CHARS = 2000  # each flood text is about this long (serve accepts up to 100,000)
PLAN = {
    "name": "Bench",
    "hard_limits": False,
    "contract_based": True,
    "requests_per_key": 1_000_000_000,
    "requests_per_organization": 1_000_000_000,
    "predictions_per_key": 1_000_000_000,
    "predictions_per_organization": 1_000_000_000,
    "max_running_jobs": 8,
    "max_active_jobs": 500,
}


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- wrk ---------------------------------------------------------------------------------------


def parse_wrk_output(stdout: str) -> dict[str, Any]:
    """The ``WRK_JSON {...}`` line that bench/serving_wrk.lua's ``done()`` prints, as a dict.

    Raises:
        ValueError: no such line (wrk failed before ``done()``, or another script ran).
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    raise ValueError(f"no WRK_JSON line in wrk's output:\n{stdout[-2000:]}")


@dataclass
class Cell:
    """One wrk run's figures. ``rps`` and ``inputs_per_s`` count 2xx answers only; latencies in
    milliseconds over every answer; ``errors`` = non-2xx answers + socket errors."""

    system: str
    name: str
    batch: int
    conns: int
    seconds: float
    requests: int
    ok: int
    rps: float
    inputs_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    errors: int
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_wrk(cls, system: str, name: str, batch: int, conns: int, raw: dict) -> Cell:
        seconds = raw["duration_us"] / 1e6
        sock = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
        ok = max(raw["requests"] - raw["non2xx"], 0)
        return cls(
            system=system,
            name=name,
            batch=batch,
            conns=conns,
            seconds=round(seconds, 3),
            requests=raw["requests"],
            ok=ok,
            rps=round(ok / seconds, 1),
            inputs_per_s=round(ok * batch / seconds, 1),
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            non2xx=raw["non2xx"],
            socket_errors=sock,
            errors=raw["non2xx"] + sock,
            raw=raw,
        )


def ensure_wrk() -> str:
    """Path of wrk, installing Debian's package when it is missing (needs root or sudo)."""
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: apt-get install -y wrk")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def wrk_run(
    url: str, body: Path, *, conns: int, seconds: float, auth: str = "", threads: int | None = None
) -> dict[str, Any]:
    """Run wrk against ``url`` POSTing ``body``; returns :func:`parse_wrk_output`'s dict."""
    threads = threads or min(conns, os.cpu_count() or 2)
    cmd = [
        WRK,
        "-t",
        str(threads),
        "-c",
        str(conns),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_AUTH": auth}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr[-2000:]}")
    result = parse_wrk_output(out.stdout)
    count_client(auth, body, result)
    return result


# Inputs answered 2xx per bearer key, as the client saw them (compared with the ledger).
CLIENT_INPUTS: dict[str, int] = {}


def count_client(auth: str, body: Path, result: dict[str, Any]) -> None:
    payload = json.loads(body.read_bytes())
    batch = len(payload.get("inputs") or payload.get("instances") or [])
    ok = max(result["requests"] - result["non2xx"], 0)
    CLIENT_INPUTS[auth] = CLIENT_INPUTS.get(auth, 0) + ok * batch


@contextmanager
def wrk_background(
    url: str, body: Path, *, conns: int, seconds: float, auth: str = "", threads: int = 1
) -> Iterator[dict[str, Any]]:
    """wrk running while the ``with`` body runs; the yielded dict is filled in on exit."""
    cmd = [WRK, "-t", str(threads), "-c", str(conns), "-d", f"{seconds:g}s", "--timeout", "10s"]
    env = {**os.environ, "BENCH_BODY": str(body), "BENCH_AUTH": auth}
    proc = subprocess.Popen(
        [*cmd, "-s", str(LUA), url], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    result: dict[str, Any] = {}
    try:
        yield result
    finally:
        stdout, stderr = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"background wrk failed: {stderr.decode()[-2000:]}")
        result.update(parse_wrk_output(stdout.decode()))
        count_client(auth, body, result)


WRK = "wrk"


# --- payloads ----------------------------------------------------------------------------------


def texts() -> list[str]:
    with open(DATA, encoding="utf-8", newline="") as fh:
        return [row["text"] for row in csv.DictReader(fh)]


@dataclass
class Payloads:
    """Request bodies on disk, by (shape, batch): shape ``inputs`` (Trainyard, BentoML) or
    ``instances`` (KServe V1); plus the flood's long texts."""

    files: dict[tuple[str, int], Path]
    flood: Path
    flood_chars: int

    @classmethod
    def write(cls, directory: Path) -> Payloads:
        directory.mkdir(parents=True, exist_ok=True)
        all_texts = texts()
        # Every 97th sentence: a spread over the three sources (Amazon, IMDb, Yelp).
        picked = all_texts[::97]
        files = {}
        for batch in (*BATCHES, 2):
            for key in ("inputs", "instances"):
                path = directory / f"{key}-{batch}.json"
                path.write_text(json.dumps({key: picked[:batch]}))
                files[(key, batch)] = path
        long_texts, i = [], 0
        for _ in range(FLOOD_INPUTS):
            parts: list[str] = []
            while sum(len(p) + 1 for p in parts) < FLOOD_CHARS:
                parts.append(all_texts[i % len(all_texts)])
                i += 1
            long_texts.append(" ".join(parts)[:FLOOD_CHARS])
        flood = directory / "flood.json"
        flood.write_text(json.dumps({"inputs": long_texts}))
        return cls(files=files, flood=flood, flood_chars=FLOOD_CHARS)


# --- the Trainyard side ------------------------------------------------------------------------


@dataclass
class Tenant:
    slug: str
    model: str = ""
    key: str = ""


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (PostgreSQL only)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


PLAN_SCRIPT = """
import json, sys
from decimal import Decimal
from saas.billing.models import Plan, PlanPrice
from saas.billing.seed import PLANS, START
fields = json.loads(sys.argv[-1])
plan, _ = Plan.objects.update_or_create(code="bench", defaults=fields)
for meter in PLANS["enterprise"][4]:
    PlanPrice.objects.update_or_create(
        plan=plan, meter=meter, effective_from=START,
        defaults={"included_units": Decimal(0), "unit_price": Decimal(0)},
    )
print(plan.pk)
"""


def setup_plan(stack: Stack) -> None:
    """The ``bench`` plan: limits far above the load, nothing charged. Written with the ORM, as
    the seed migration does (plans are operator data; there is no service for them)."""
    stack.manage("shell", "-c", PLAN_SCRIPT.replace("sys.argv[-1]", repr(json.dumps(PLAN))))


def ensure_tenant(stack: Stack, slug: str) -> None:
    try:
        stack.manage(
            "create_tenant",
            slug,
            "--name",
            f"Bench {slug}",
            "--owner-email",
            f"owner@{slug}.bench.test",
            "--plan",
            "bench",
        )
    except RuntimeError as exc:
        if "already exists" not in str(exc):
            raise


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"

    def __call__(self, method: str, path: str, expect: int = 200, **kw: Any) -> Any:
        r = self.s.request(method, self.base + path, timeout=120, **kw)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path} -> {r.status_code}: {r.text[:2000]}")
        return r.json() if "json" in r.headers.get("content-type", "") else r


def train(api: Api, label: str) -> str:
    """Upload the sentiment CSV and train the text model; returns the model id."""
    with open(DATA, "rb") as fh:
        ds = api(
            "POST",
            "/v1/datasets",
            201,
            files={"file": fh},
            data={"task": "text-classification", "name": "bench sentiment"},
        )
    job = api(
        "POST",
        "/v1/training-jobs",
        201,
        json={"dataset": ds["id"], **{k: v for k, v in RECIPE.items() if k != "version"}},
    )
    t0 = time.monotonic()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() - t0 > 900:
            raise TimeoutError(f"training job {job['id']} did not finish in 15 min")
        time.sleep(1)
        job = api("GET", f"/v1/training-jobs/{job['id']}")
    if job["status"] != "succeeded":
        raise RuntimeError(f"training {label} ended {job['status']}: {job['error']}")
    log(
        f"  {label}: {job['model']} accuracy {job['metrics']['accuracy']:.3f}, "
        f"trained in {time.monotonic() - t0:.0f} s"
    )
    return job["model"]


def model_cache_key() -> str:
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    recipe = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()
    return f"{digest[:12]}-{recipe[:8]}"


def prepare_models(stack: Stack, db_url: str) -> tuple[Tenant, Tenant, Path]:
    """Tenants A and B with a trained model each and fresh keys; A's SavedModel on disk.

    Reuses var/bench/models/<key>/ when its models still exist in this database.
    """
    cache = VAR / "models" / model_cache_key()
    state_file = cache / "state.json"
    saved_model = cache / "saved_model"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    if state.get("database") != db_url:
        state = {}
    a = Tenant(slug=state.get("a", {}).get("slug") or f"bench-a-{int(time.time())}")
    b = Tenant(slug=state.get("b", {}).get("slug") or f"bench-b-{int(time.time())}")
    for t in (a, b):
        ensure_tenant(stack, t.slug)
        t.key = stack.manage("create_api_key", t.slug, "--name", "bench")
        t.model = state.get("a" if t is a else "b", {}).get("model", "")
    stack.start_web(behind_serve=False)  # the benchmark starts its own serve processes
    stack.wait_web()
    need = []
    for t in (a, b):
        if (
            not t.model
            or not requests.get(
                f"{stack.base_url}/v1/models/{t.model}",
                headers={"Authorization": f"Bearer {t.key}"},
                timeout=30,
            ).ok
        ):
            need.append(t)
    if need or not (saved_model / "saved_model.pb").exists():
        need = need or [a]
        log(f"Training the text model ({RECIPE['hyperparameters']}) for {len(need)} tenant(s) …")
        from saas.celery import Queue

        stack.start_worker("training", Queue.TRAINING_CPU)
        try:
            for t in need:
                t.model = train(Api(stack.base_url, t.key), t.slug)
        finally:
            stack.kill("worker-training", signal.SIGTERM)
        blob = Api(stack.base_url, a.key)("GET", f"/v1/models/{a.model}/download").content
        shutil.rmtree(saved_model, ignore_errors=True)
        cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(cache, filter="data")
        if not (saved_model / "saved_model.pb").exists():
            raise RuntimeError(f"the download of {a.model} holds no saved_model/saved_model.pb")
        state = {
            "database": db_url,
            "a": {"slug": a.slug, "model": a.model},
            "b": {"slug": b.slug, "model": b.model},
        }
        state_file.write_text(json.dumps(state, indent=2))
    else:
        log(f"Reusing the trained models in {cache} (A {a.model}, B {b.model})")
    return a, b, saved_model


def wait_http(url: str, proc: subprocess.Popen, log_path: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited ({proc.returncode}); see {log_path}")
        try:
            if requests.get(url, timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s; see {log_path}")


@contextmanager
def server(
    name: str, argv: list[str], env: dict[str, str], ready_url: str, log_dir: Path, cwd: Path
) -> Iterator[subprocess.Popen]:
    """A server process (own session, output to ``log_dir/name.log``), stopped on exit."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as fh:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_http(ready_url, proc, log_path)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- peers -------------------------------------------------------------------------------------


def ensure_peer_venv(name: str) -> Path:
    """var/bench/venvs/<name> with the peer and TensorFlow installed (only when missing)."""
    venv = VENVS / name
    stamp = venv / ".bench-installed"
    wanted = json.dumps(PEER_PACKAGES[name] + PEER_COMMON)
    if stamp.exists() and stamp.read_text() == wanted:
        return venv
    log(f"Installing {name} into {venv} …")
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *PEER_PACKAGES[name], *PEER_COMMON], check=True)
    stamp.write_text(wanted)
    return venv


def peer_versions(venv: Path, name: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", name],
        capture_output=True,
        text=True,
    )
    return next((ln.split()[-1] for ln in out.stdout.splitlines() if ln.startswith("Version")), "?")


# --- measuring ---------------------------------------------------------------------------------

TY = "Trainyard (serve)"
TY_OFF = "Trainyard, batching off"
B_ALONE = "Trainyard: tenant B alone"
B_NOISY = "Trainyard: tenant B, A flooding"
BENTO = "BentoML (adaptive batching)"
KSERVE = "KServe model server"
PEERS = (BENTO, KSERVE)


@dataclass
class System:
    """How to call one system: the predict URL, the body shape and the bearer key."""

    name: str
    url: str
    shape: str  # "inputs" or "instances"
    auth: str = ""


def check_answer(system: System, payloads: Payloads, batch: int = 2) -> dict[str, Any]:
    """POST one request and check it answers ``batch`` predictions; returns the answer."""
    headers = {"Content-Type": "application/json"}
    if system.auth:
        headers["Authorization"] = f"Bearer {system.auth}"
    r = requests.post(
        system.url,
        data=payloads.files[(system.shape, batch)].read_bytes(),
        headers=headers,
        timeout=60,
    )
    if r.status_code != 200:
        raise RuntimeError(f"{system.name}: {r.status_code} {r.text[:1000]}")
    CLIENT_INPUTS[system.auth] = CLIENT_INPUTS.get(system.auth, 0) + batch
    answer = r.json()
    preds = answer["predictions"] if isinstance(answer, dict) else answer
    if len(preds) != batch or not {"label", "score"} <= set(preds[0]):
        raise RuntimeError(f"{system.name}: unexpected answer {str(answer)[:500]}")
    return {"status": r.status_code, "headers": dict(r.headers), "body": answer}


def warm_up(system: System, payloads: Payloads, seconds: float) -> None:
    """wrk at both batch sizes, not recorded (a batcher adapts, a JIT warms)."""
    for batch in BATCHES:
        wrk_run(
            system.url,
            payloads.files[(system.shape, batch)],
            conns=8,
            seconds=min(2.0, seconds),
            auth=system.auth,
        )


def measure(system: System, body: Path, batch: int, conns: int, seconds: float) -> Cell:
    raw = wrk_run(system.url, body, conns=conns, seconds=seconds, auth=system.auth)
    cell = Cell.from_wrk(system.name, f"b{batch}-c{conns}", batch, conns, raw)
    log(
        f"  {system.name:<32} batch {batch:>2} conns {conns:>2}: {cell.rps:>7.0f} req/s "
        f"{cell.inputs_per_s:>7.0f} inputs/s  p50 {cell.p50_ms:7.2f}  p99 {cell.p99_ms:7.2f} ms"
        f"  errors {cell.errors}"
    )
    return cell


def noisy_neighbour(
    a: System, b: System, payloads: Payloads, seconds: float, extra: dict[str, Any]
) -> list[Cell]:
    """Tenant B, batch 1 at 8 connections, alone and while tenant A floods
    :data:`FLOOD_INPUTS` long texts a request on :data:`FLOOD_CONNS` connections."""
    headers = {"Authorization": f"Bearer {a.auth}", "Content-Type": "application/json"}
    r = requests.post(a.url, data=payloads.flood.read_bytes(), headers=headers, timeout=60)
    if r.status_code == 200:
        CLIENT_INPUTS[a.auth] = CLIENT_INPUTS.get(a.auth, 0) + FLOOD_INPUTS
    extra["flood_request"] = {
        "status": r.status_code,
        "body": r.text[:300] if r.status_code != 200 else "ok",
        "inputs": FLOOD_INPUTS,
        "chars_each": payloads.flood_chars,
        "usage": r.json().get("usage") if r.status_code == 200 else None,
    }
    body = payloads.files[("inputs", 1)]
    alone = measure(System(B_ALONE, b.url, b.shape, b.auth), body, 1, 8, seconds)
    with wrk_background(
        a.url, payloads.flood, conns=FLOOD_CONNS, seconds=seconds + 4, auth=a.auth
    ) as flood:
        time.sleep(2)  # the flood's queue builds up first
        noisy = measure(System(B_NOISY, b.url, b.shape, b.auth), body, 1, 8, seconds)
    drained = drain(a, payloads)
    fc = Cell.from_wrk("tenant A flood", f"b{FLOOD_INPUTS}-c{FLOOD_CONNS}", FLOOD_INPUTS, 32, flood)
    extra["flood"] = {k: v for k, v in asdict(fc).items() if k != "raw"}
    extra.setdefault("drain_seconds_after_flood", []).append(round(drained, 2))
    log(
        f"  {'tenant A flooding':<32} {fc.rps:.1f} req/s, {fc.inputs_per_s:.0f} inputs/s, "
        f"p50 {fc.p50_ms:.0f} p99 {fc.p99_ms:.0f} ms, errors {fc.errors} ({fc.non2xx} non-2xx)"
    )
    return [alone, noisy]


def drain(system: System, payloads: Payloads, timeout: float = 15.0) -> float:
    """Wait until ``system`` answers a small request within 50 ms again: wrk exits without
    waiting for the requests it has in flight, so a flood's last ones are still queued in the
    server and would land in the next cell. Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        t = time.monotonic()
        check_answer(system, payloads)
        if time.monotonic() - t < 0.05:
            break
        time.sleep(0.2)
    return time.monotonic() - t0


def median_cell(cells: list[Cell]) -> Cell:
    """Per-figure medians over rounds of the same cell (each figure on its own)."""
    if len(cells) == 1:
        return cells[0]
    import statistics

    first = cells[0]
    fields = ("rps", "inputs_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms")
    med = {f: round(statistics.median(getattr(c, f) for c in cells), 3) for f in fields}
    counts = ("requests", "ok", "non2xx", "socket_errors", "errors")
    return Cell(
        system=first.system,
        name=first.name,
        batch=first.batch,
        conns=first.conns,
        seconds=sum(c.seconds for c in cells),
        **{f: sum(getattr(c, f) for c in cells) for f in counts},
        **med,
        raw={"rounds": [c.raw for c in cells]},
    )


CEILING_SCRIPT = """
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
from common import SavedModelClassifier
model = SavedModelClassifier(sys.argv[2])
texts = json.loads(open(sys.argv[3]).read())["inputs"]
seconds = float(sys.argv[4])
out = {}
for batch in (1, 32):
    x = tf.constant(texts[:batch], dtype=tf.string)
    for _ in range(20):
        model._fn(inputs=x)
    lat = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        t = time.perf_counter()
        model._fn(inputs=x)["scores"].numpy()
        lat.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    lat.sort()
    out[batch] = {"calls_per_s": len(lat) / wall, "inputs_per_s": len(lat) * batch / wall,
                  "p50_ms": statistics.median(lat) * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000}
print("CEILING " + json.dumps(out))
"""


def ceiling(saved_model: Path, payloads: Payloads, seconds: float) -> dict[int, Any]:
    """``serving_default`` called in-process (Trainyard's venv), batch 1 and 32, one thread."""
    out = subprocess.run(
        [
            str(PY),
            "-c",
            CEILING_SCRIPT,
            str(PEERS_DIR),
            str(saved_model),
            str(payloads.files[("inputs", 32)]),
            str(min(seconds, 4.0)),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"},
        timeout=300,
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("CEILING ")), None)
    if line is None:
        raise RuntimeError(f"ceiling run failed: {out.stderr[-2000:]}")
    return {int(k): v for k, v in json.loads(line[len("CEILING ") :]).items()}


# --- the report --------------------------------------------------------------------------------


def goal(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"goal": name, "pass": ok, "detail": detail}


def goals(
    cells: list[Cell], extra: dict[str, Any], rounds: list[dict[tuple[str, str], Cell]]
) -> list[dict[str, Any]]:
    """Issue 10's four goals, each PASS/FAIL with its figures. Each ratio is taken within a
    round (cells measured a minute apart) and the median over rounds decides; the figures
    shown are the per-figure medians. A cell with more than 1% errors fails its goal whatever
    its speed (fast refusals are not answers)."""
    import statistics

    by = {(c.system, c.name): c for c in cells}
    out = []

    def clean(c: Cell) -> bool:
        return c.errors <= 0.01 * max(c.requests, 1)

    def ratios(fn) -> tuple[float, float]:
        pairs = [fn(r) for r in rounds]
        return (
            statistics.median(p[0] for p in pairs),
            statistics.median(p[1] for p in pairs),
        )

    ty1 = by.get((TY, "b1-c8"))
    peer1 = [by[(p, "b1-c8")] for p in PEERS if (p, "b1-c8") in by]
    if ty1 and peer1:
        best = max(peer1, key=lambda c: c.rps)

        def g1(r: dict) -> tuple[float, float]:
            rb = max((r[(p, "b1-c8")] for p in PEERS if (p, "b1-c8") in r), key=lambda c: c.rps)
            t = r[(TY, "b1-c8")]
            return t.rps / max(rb.rps, 1e-9), t.p99_ms / max(rb.p99_ms, 1e-9)

        rps_r, p99_r = ratios(g1)
        out.append(
            goal(
                "batch 1 @ 8 conns: req/s ≥ 1.0× fastest peer, p99 ≤ its p99",
                rps_r >= 1.0 and p99_r <= 1.0 and clean(ty1),
                f"Trainyard {ty1.rps:.0f} req/s p99 {ty1.p99_ms:.1f} ms vs {best.system} "
                f"{best.rps:.0f} req/s p99 {best.p99_ms:.1f} ms ({rps_r:.2f}× req/s, "
                f"{p99_r:.2f}× p99)",
            )
        )
    ty32 = by.get((TY, "b32-c8"))
    peer32 = [by[(p, "b32-c8")] for p in PEERS if (p, "b32-c8") in by]
    if ty32 and peer32:
        best = max(peer32, key=lambda c: c.inputs_per_s)

        def g2(r: dict) -> tuple[float, float]:
            rb = max(
                (r[(p, "b32-c8")] for p in PEERS if (p, "b32-c8") in r),
                key=lambda c: c.inputs_per_s,
            )
            return r[(TY, "b32-c8")].inputs_per_s / max(rb.inputs_per_s, 1e-9), 0.0

        ratio, _ = ratios(g2)
        out.append(
            goal(
                "batch 32 @ 8 conns: inputs/s ≥ 1.0× fastest peer",
                ratio >= 1.0 and clean(ty32),
                f"Trainyard {ty32.inputs_per_s:.0f} inputs/s vs {best.system} "
                f"{best.inputs_per_s:.0f} ({ratio:.2f}×)",
            )
        )
    on, off = by.get((TY, "b1-c64")), by.get((TY_OFF, "b1-c64"))
    if on and off:

        def g3(r: dict) -> tuple[float, float]:
            a, b = r[(TY, "b1-c64")], r[(TY_OFF, "b1-c64")]
            return a.rps / max(b.rps, 1e-9), a.p99_ms / max(b.p99_ms, 1e-9)

        ratio, p99r = ratios(g3)
        out.append(
            goal(
                "batching on @ 64 conns, batch 1: ≥ 3× batching-off req/s, p99 ≤ 1.5× off",
                ratio >= 3 and p99r <= 1.5 and clean(on),
                f"on {on.rps:.0f} req/s p99 {on.p99_ms:.1f} ms, off {off.rps:.0f} req/s p99 "
                f"{off.p99_ms:.1f} ms ({ratio:.2f}× req/s, {p99r:.2f}× p99)",
            )
        )
    alone, noisy = by.get((B_ALONE, "b1-c8")), by.get((B_NOISY, "b1-c8"))
    if alone and noisy:

        def g4(r: dict) -> tuple[float, float]:
            a, b = r[(B_ALONE, "b1-c8")], r[(B_NOISY, "b1-c8")]
            return b.p99_ms / max(a.p99_ms, 1e-9), b.p50_ms / max(a.p50_ms, 1e-9)

        r99, r50 = ratios(g4)
        out.append(
            goal(
                "noisy neighbour: B's p99 with A flooding ≤ 2× B alone",
                r99 <= 2 and clean(noisy),
                f"B p99 alone {alone.p99_ms:.1f} ms, with A flooding {noisy.p99_ms:.1f} ms "
                f"({r99:.2f}×; p50 {r50:.2f}×); B {alone.rps:.0f} → {noisy.rps:.0f} req/s, "
                f"errors {noisy.errors}; A's flood "
                f"{extra.get('flood', {}).get('inputs_per_s', 0):.0f} inputs/s",
            )
        )
    return out


def table(cells: list[Cell], ceil: dict[int, Any] | None) -> str:
    rows = [
        "| system | cell | req/s | inputs/s | p50 ms | p99 ms | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {name: i for i, name in enumerate((TY, TY_OFF, B_ALONE, B_NOISY, *PEERS))}
    for c in sorted(cells, key=lambda c: (order.get(c.system, 99), c.batch, c.conns)):
        rows.append(
            f"| {c.system} | batch {c.batch}, {c.conns} conns | {c.rps:,.0f} | "
            f"{c.inputs_per_s:,.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | {c.errors} |"
        )
    for batch, v in (ceil or {}).items():
        rows.append(
            f"| SavedModel in-process (`serving_default`) | batch {batch}, 1 thread | "
            f"{v['calls_per_s']:,.0f} calls/s | {v['inputs_per_s']:,.0f} | {v['p50_ms']:.2f} | "
            f"{v['p99_ms']:.2f} | 0 |"
        )
    return "\n".join(rows)


def ledger_predictions(api: Api) -> float:
    """The tenant's ``predictions`` in the ledger so far (all days), from ``/v1/usage``."""
    return sum(
        float(row["quantity"])
        for row in api("GET", "/v1/usage")["data"]
        if row["meter"] == "predictions"
    )


def log_problems(run_dir: Path) -> dict[str, list[str]]:
    """Tracebacks and ERROR/WARNING lines in the serve logs (TensorFlow's start-up chatter
    about CUDA left out)."""
    found: dict[str, list[str]] = {}
    for path in sorted(run_dir.glob("serve-*.log")):
        lines = [
            ln.rstrip()
            for ln in path.read_text(errors="replace").splitlines()
            if any(w in ln for w in ("Traceback", "ERROR", "WARNING", "Error", "exception"))
            and "cuda" not in ln.lower()
            and "absl::InitializeLog" not in ln
        ]
        if lines:
            found[path.name] = lines[:20]
    return found


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    global WRK
    seconds = float(os.environ.get("BENCH_SECONDS", "8"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
    workers = os.environ.get("BENCH_WORKERS", "1")
    wanted = set(os.environ.get("BENCH_SYSTEMS", "trainyard,bentoml,kserve").split(","))
    db_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trainyard_bench"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
    # Extra environment for Trainyard's serve processes, "K=V,K=V" (to try its knobs).
    serve_env = dict(
        kv.split("=", 1) for kv in os.environ.get("BENCH_SERVE_ENV", "").split(",") if "=" in kv
    )
    WRK = ensure_wrk()
    run_dir = VAR / "runs" / time.strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    payloads = Payloads.write(VAR / "bodies")
    venvs = {p: ensure_peer_venv(p) for p in PEER_PACKAGES if p in wanted}
    log(
        f"Run {run_dir.name}: {seconds:g} s a cell, {rounds} round(s), {workers} worker "
        f"process(es) a system, on {os.cpu_count()} CPUs"
    )
    extra: dict[str, Any] = {"logs": str(run_dir)}
    ensure_database(db_url)
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-serving-not-secret",
        "TRAINYARD_STORAGE_DIR": str(VAR / "storage"),
        "TRAINYARD_MODEL_CACHE_DIR": str(VAR / "model-cache"),
        "TRAINYARD_VAR_DIR": str(VAR / "trainyard-var"),
    }
    versions: dict[str, str] = {}
    rounds_cells: dict[tuple[str, str], list[Cell]] = {}
    with ExitStack() as running, Stack(env=env, log_dir=run_dir) as stack:
        stack.manage("migrate", "--noinput")
        setup_plan(stack)
        a, b, saved_model = prepare_models(stack, db_url)
        usage = {"a": Api(stack.base_url, a.key), "b": Api(stack.base_url, b.key)}
        before = {k: ledger_predictions(api) for k, api in usage.items()}
        peers_env = {
            **os.environ,
            "BENCH_SAVED_MODEL": str(saved_model),
            "BENCH_MAX_BATCH": str(MAX_BATCH),
            "BENCH_WORKERS": workers,
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_USE_LEGACY_KERAS": "1",
        }
        # Every system starts now and idles while another is measured, so that each cell
        # compares the systems within a minute of each other on this shared machine.
        systems: list[System] = []
        ty = ty_off = tb = None
        if "trainyard" in wanted:
            for name, knobs in ((TY, {}), (TY_OFF, {"TRAINYARD_SERVE_BATCHING": "0"})):
                port = free_port()
                running.enter_context(
                    server(
                        "serve-batching-" + ("off" if knobs else "on"),
                        [str(PY), "-m", "serve", "--host", "127.0.0.1", "--port", str(port)]
                        + ["--workers", workers],
                        {**stack.env, **serve_env, **knobs},
                        f"http://127.0.0.1:{port}/healthz/serve",
                        run_dir,
                        ROOT,
                    )
                )
                base = f"http://127.0.0.1:{port}"
                url = f"{base}/v1/models/{a.model}/predict"
                if knobs:
                    ty_off = System(name, url, "inputs", a.key)
                else:
                    ty = System(name, url, "inputs", a.key)
                    tb = System(B_ALONE, f"{base}/v1/models/{b.model}/predict", "inputs", b.key)
            assert ty is not None and ty_off is not None
            systems.append(ty)
        if "bentoml" in venvs:
            venv = venvs["bentoml"]
            versions["bentoml"] = peer_versions(venv, "bentoml")
            port = free_port()
            running.enter_context(
                server(
                    "bentoml",
                    [str(venv / "bin" / "bentoml"), "serve", "bentoml_service:Classifier"]
                    + ["--host", "127.0.0.1", "--port", str(port)],
                    peers_env,
                    f"http://127.0.0.1:{port}/readyz",
                    run_dir,
                    PEERS_DIR,
                )
            )
            systems.append(System(BENTO, f"http://127.0.0.1:{port}/predict", "inputs"))
        if "kserve" in venvs:
            venv = venvs["kserve"]
            versions["kserve"] = peer_versions(venv, "kserve")
            port = free_port()
            running.enter_context(
                server(
                    "kserve",
                    [str(venv / "bin" / "python"), "kserve_server.py", "--model_name", "sms"]
                    + ["--http_port", str(port), "--grpc_port", str(free_port())]
                    + ["--workers", workers, "--enable_grpc", "false"]
                    + ["--enable_latency_logging", "false"],
                    peers_env,
                    f"http://127.0.0.1:{port}/v1/models/sms",
                    run_dir,
                    PEERS_DIR,
                )
            )
            systems.append(
                System(KSERVE, f"http://127.0.0.1:{port}/v1/models/sms:predict", "instances")
            )
        log("Warming up " + ", ".join(s.name for s in systems) + " …")
        # Every model loads first (serve loads lazily: A's and B's on one process, A's on the
        # batching-off one), so that no load's CPU falls into another system's warm-up or cell.
        everyone = systems + [x for x in (ty_off, tb) if x is not None]
        firsts = {x.name: check_answer(x, payloads) for x in everyone}
        if ty is not None:
            first = firsts[ty.name]
            extra["first_answer_usage"] = first["body"].get("usage")
            extra["ratelimit_headers"] = {
                k: v for k, v in first["headers"].items() if k.lower().startswith("ratelimit")
            }
        for x in everyone:
            if x is not tb:
                warm_up(x, payloads, seconds)
        for rnd in range(rounds):
            if rounds > 1:
                log(f"Round {rnd + 1}/{rounds}")
            for batch in BATCHES:
                for conns in CONNS:
                    body_of = {s.name: payloads.files[(s.shape, batch)] for s in systems}
                    cell_systems = list(systems)
                    if ty_off is not None and batch == 1 and conns in (8, 64):
                        cell_systems.insert(1, ty_off)
                        body_of[ty_off.name] = payloads.files[("inputs", batch)]
                    for s in cell_systems:
                        c = measure(s, body_of[s.name], batch, conns, seconds)
                        rounds_cells.setdefault((c.system, c.name), []).append(c)
            if ty is not None and tb is not None:
                for c in noisy_neighbour(ty, tb, payloads, seconds, extra):
                    rounds_cells.setdefault((c.system, c.name), []).append(c)
        if ty is not None:
            time.sleep(5)  # serve flushes its closed metering windows every second
            after = {k: ledger_predictions(api) for k, api in usage.items()}
            # wrk does not count the requests in flight when a run ends (at most conns × batch
            # a run), so the ledger may exceed the client's count by that much, never fall short.
            extra["metering"] = {
                k: {
                    "ledger_predictions_this_run": after[k] - before[k],
                    "client_counted_2xx_inputs": CLIENT_INPUTS.get(t.key, 0),
                    "ledger_short_by": max(0, CLIENT_INPUTS.get(t.key, 0) - (after[k] - before[k])),
                }
                for k, t in (("a", a), ("b", b))
            }
    cells = [median_cell(cs) for cs in rounds_cells.values()]
    by_round = [
        {key: cs[i] for key, cs in rounds_cells.items() if len(cs) > i} for i in range(rounds)
    ]
    log("SavedModel in-process …")
    ceil = ceiling(saved_model, payloads, seconds)
    extra["serve_log_problems"] = log_problems(run_dir)
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "seconds_per_cell": seconds,
        "rounds": rounds,
        "workers_per_system": int(workers),
        "serve_env": serve_env,
        "peer_versions": versions,
        "cells": [{k: v for k, v in asdict(c).items() if k != "raw"} for c in cells],
        "ceiling": ceil,
        "extra": extra,
        "goals": goals(cells, extra, by_round),
    }
    (VAR / "serving.json").write_text(json.dumps(results, indent=2, default=str))
    log("\n" + table(cells, ceil) + "\n")
    for g in results["goals"]:
        log(f"{'PASS' if g['pass'] else 'FAIL'}  {g['goal']}: {g['detail']}")
    for k, v in extra.items():
        if k != "flood":
            log(f"{k}: {v}")
    log(f"\nResults in {VAR / 'serving.json'}; logs in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
