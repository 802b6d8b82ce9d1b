"""No secret and no customer content in any log of a real stack.

A stack of its own (gunicorn behind the data plane, a training worker, ``scripts/stack.py``)
with production-like settings (DEBUG off, the default email backend, which writes mail to files
outside the log folder) goes through sign-up with its emailed confirmation, an invitation
accepted by sign-up, a password reset, an API key, a training job and predictions. Then every
file under the run's log folder is searched for the API key, every token that was emailed and
the texts that were predicted. The mail files are searched too, as a control: the secrets
really existed, so their absence from the logs means something.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings

from saas.celery import Queue
from scripts.stack import Stack, free_port
from tests.conftest import small_text_rows, text_csv

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-correct-horse-41"
NEW_PASSWORD = "e2e-battery-staple-42"
# Inputs no log line could contain by chance.
PREDICTED = ["zebra quokka marvellous 7781 loved it", "wombat narwhal dreadful 9923 hated it"]


@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory) -> tuple[Path, Path]:
    return tmp_path_factory.mktemp("run-logs"), tmp_path_factory.mktemp("run-mail")


@pytest.fixture(scope="module")
def quiet_stack(django_db_setup, django_db_blocker, run_dirs, tmp_path_factory):
    log_dir, mail_dir = run_dirs
    db = django_settings.DATABASES["default"]
    port = free_port()
    # A Redis database of its own: the session's e2e stack (tests/e2e/conftest.py) may still
    # be up on E2E_REDIS_URL, and its worker, with its own storage folder, would take this
    # stack's training job off the shared queue.
    redis_url = os.environ.get("E2E_QUIET_REDIS_URL", "redis://127.0.0.1:6379/12")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "LOG_LEVEL": "INFO",
        "TRAINYARD_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "EMAIL_FILE_PATH": str(mail_dir),
        "TRAINYARD_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "TRAINYARD_MODEL_CACHE_DIR": str(tmp_path_factory.mktemp("model-cache")),
        "TRAINYARD_PREDICT_TIMEOUT_SECONDS": "60",
        "TRAINYARD_SERVE_DEADLINE_SECONDS": "120",
    }
    for k in ("EMAIL_BACKEND", "EMAIL_URL"):
        os.environ.pop(k, None)  # the stack inherits os.environ: the default backend is tested
    with Stack(env=env, log_dir=log_dir, port=port) as s:
        s.start_web()
        s.start_serve()
        s.start_worker("training", Queue.TRAINING_CPU)
        s.wait_web()
        yield s


class Browser:
    """A requests session that posts forms like a browser does (CSRF cookie + field)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.base + path, timeout=60, **kw)

    def post(self, path: str, data: dict, expect: int = 302) -> requests.Response:
        if "csrftoken" not in self.http.cookies:
            self.get(path)
        data = {**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]}
        r = self.http.post(self.base + path, data=data, timeout=60, allow_redirects=False)
        assert r.status_code == expect, f"POST {path}: {r.status_code} {r.text[:800]}"
        return r


def mails(mail_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(mail_dir.glob("*")))


def wait_mail(mail_dir: Path, pattern: str, seen: int, timeout: float = 20.0) -> str:
    """The ``seen``-th match (0-based) of ``pattern`` in the mail folder, waiting for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, mails(mail_dir))
        if len(found) > seen:
            return found[seen]
        assert time.monotonic() < deadline, f"no mail matching {pattern!r}"
        time.sleep(0.2)


def test_a_whole_flow_leaves_no_secret_in_any_log(quiet_stack, run_dirs, transactional_db):
    from tests.e2e.conftest import wait_windows_flushed

    log_dir, mail_dir = run_dirs
    base = quiet_stack.base_url
    email = f"ada-{time.monotonic_ns()}@example.com"
    secrets: dict[str, str] = {}

    # Sign up; confirm the address with the emailed link and the password.
    ada = Browser(base)
    r = ada.post("/signup", {"email": email, "password": PASSWORD, "organization": "Ada Co"})
    assert r.headers["Location"] == "/signup/sent"
    confirm = wait_mail(mail_dir, re.escape(base) + r"(/signup/confirm/\S+/\S+)", 0)
    secrets["confirm token"] = confirm.rsplit("/", 1)[1]
    assert ada.get(confirm).status_code == 200
    assert ada.post(confirm, {"password": PASSWORD}).headers["Location"] == "/app/"

    # Invite a colleague, who signs up through the emailed link.
    colleague = f"bo-{time.monotonic_ns()}@example.com"
    ada.post("/app/members", {"email": colleague, "role": "developer"})
    link = wait_mail(mail_dir, re.escape(base) + r"(/invitations/accept\?token=\S+)", 0)
    secrets["invitation token"] = link.split("token=")[1]
    bo = Browser(base)
    assert bo.get(link).status_code == 200
    r = bo.post(
        f"/signup?invitation={secrets['invitation token']}",
        {"email": colleague, "password": PASSWORD, "invitation": secrets["invitation token"]},
    )
    assert r.headers["Location"] == "/app/"

    # Reset Ada's password from the emailed link, then sign in with the new one.
    anon = Browser(base)
    anon.post("/password-reset", {"email": email})
    reset = wait_mail(mail_dir, re.escape(base) + r"(/password-reset/[^/\s]+/[^/\s]+)", 0)
    secrets["reset token"] = reset.rsplit("/", 1)[1]
    form = anon.http.get(base + reset, timeout=60)  # follows to .../set-password
    assert "Choose a new password" in form.text
    anon.post(
        form.url.removeprefix(base),
        {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    signed_in = Browser(base)
    signed_in.post("/login", {"username": email, "password": NEW_PASSWORD})

    # An API key (the session's JSON API, CSRF header), then data, training, predictions.
    r = signed_in.http.post(
        base + "/v1/api-keys",
        json={"name": "e2e"},
        headers={"X-CSRFToken": signed_in.http.cookies["csrftoken"]},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    secrets["API key"] = r.json()["secret"]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {secrets['API key']}"
    ds = api.post(
        base + "/v1/datasets",
        files={"file": ("d.csv", text_csv(small_text_rows()))},
        data={"task": "text-classification", "name": "d"},
        timeout=90,
    )
    assert ds.status_code == 201, ds.text
    job = api.post(
        base + "/v1/training-jobs",
        json={"dataset": ds.json()["id"], "hyperparameters": {"epochs": 2}, "seed": 0},
        timeout=60,
    ).json()
    deadline = time.monotonic() + 300
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
        job = api.get(base + f"/v1/training-jobs/{job['id']}", timeout=60).json()
    assert job["status"] == "succeeded", job["error"]
    out = api.post(
        base + f"/v1/models/{job['model']}/predict", json={"inputs": PREDICTED}, timeout=150
    )
    assert out.status_code == 200, out.text
    assert len(out.json()["predictions"]) == 2
    # A failing request carries customer text too.
    bad = api.post(
        base + f"/v1/models/{job['model']}/predict", json={"inputs": [PREDICTED[0], 7]}, timeout=60
    )
    assert bad.status_code == 400
    wait_windows_flushed()
    time.sleep(1.5)  # the last access-log lines and task results are written

    # Control: the secrets were real (the mail holds every emailed one).
    mail_text = mails(mail_dir)
    for name in ("confirm token", "invitation token", "reset token"):
        assert secrets[name] in mail_text, name
    searched = {p: p.read_bytes() for p in log_dir.rglob("*") if p.is_file()}
    assert {"web.log", "serve.log", "worker-training.log"} <= {p.name for p in searched}
    web = searched[log_dir / "web.log"].decode(errors="replace")
    assert '"GET /invitations/accept?token=- HTTP/1.1"' in web  # the access log is on
    assert '"GET /password-reset/-/- HTTP/1.1"' in web

    needles = {**secrets, **{f"predicted text {i}": t for i, t in enumerate(PREDICTED)}}
    needles["API key secret part"] = secrets["API key"].rsplit("_", 1)[1]
    leaks = [
        f"{name} in {path.name}"
        for name, needle in needles.items()
        for path, content in searched.items()
        if needle.encode() in content
    ]
    assert not leaks, leaks
