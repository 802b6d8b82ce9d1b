"""gunicorn's own error answers are problem+json: a real gunicorn with the repository's
``gunicorn.conf.py`` (so with :class:`saas.gunicorn_worker.ProblemSyncWorker`) in front of a
tiny WSGI app whose one route outlives the worker timeout, and a request line gunicorn
cannot parse."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = """
import time
def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(30)
    if environ["PATH_INFO"] == "/raise":
        raise RuntimeError("escapes the app")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gunicorn")
    (tmp / "slowapp.py").write_text(APP)
    port = _free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "slowapp:app",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--pythonpath",
            f"{tmp},{ROOT}",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--timeout",
            "2",
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(10)


def _get(port: int, path: str) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.getheader("Content-Type", ""), json.loads(r.read() or b"null")


def test_a_worker_timeout_is_a_500_problem(server):
    status, ctype, body = _get(server, "/slow")
    assert status == 500
    assert ctype == "application/problem+json"
    assert body["type"] == "https://trainyard.dev/problems/internal-error"
    assert body["status"] == 500 and "took too long" in body["detail"]


def test_an_exception_escaping_the_app_is_a_500_problem_without_internals(server):
    status, ctype, body = _get(server, "/raise")
    assert (status, ctype) == (500, "application/problem+json")
    assert "escapes" not in json.dumps(body)


def test_a_request_gunicorn_cannot_parse_is_a_400_problem(server):
    with socket.create_connection(("127.0.0.1", server), timeout=10) as s:
        s.sendall(b"GET /\x00bad HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 400
