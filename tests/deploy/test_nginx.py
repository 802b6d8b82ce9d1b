"""docker/nginx.conf, compose's front door: predict and OIP v2 go to serve, the rest to web.

Two levels. The file is parsed and its locations matched the way nginx matches them (exact,
then the longest prefix, then regexes in order), so the routing is checked on any machine.
Where nginx is installed (Debian's, at /usr/sbin/nginx), a copy of the file runs for real in
front of two tiny local HTTP servers standing in for ``serve`` and ``web``: the copy changes
only what cannot work outside compose (upstream host names become 127.0.0.1 ports, the
``resolve`` parameter goes, since Debian's nginx 1.22 predates it in open source, and logs and
temporary files go to a temporary directory). CI without nginx skips that half.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from serve.config import ServeConfig

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "docker" / "nginx.conf"
MiB = 1024 * 1024


# --- a small nginx configuration parser ---------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None

    def all(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def one(self, name: str) -> Directive:
        (found,) = self.all(name)
        return found

    def get(self, name: str) -> Directive | None:
        found = self.all(name)
        return found[0] if found else None


_TOKEN = re.compile(
    r"""\s+|#[^\n]*|"((?:\\.|[^"\\])*)"|'((?:\\.|[^'\\])*)'|([{};])|([^\s{};"'#]+)"""
)


def _tokens(text: str):
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"cannot tokenise nginx.conf at {text[pos : pos + 40]!r}"
        pos = m.end()
        dq, sq, punct, word = m.groups()
        if dq is not None or sq is not None:
            yield ("word", dq if dq is not None else sq)
        elif punct:
            yield (punct, punct)
        elif word:
            yield ("word", word)


def parse(text: str) -> Directive:
    """The file as a tree: a root :class:`Directive` whose block holds the top level."""
    root = Directive("", [], [])
    stack = [root]
    words: list[str] = []
    for kind, value in _tokens(text):
        if kind == "word":
            words.append(value)
        elif kind == ";":
            stack[-1].block.append(Directive(words[0], words[1:]))  # type: ignore[union-attr]
            words = []
        elif kind == "{":
            d = Directive(words[0], words[1:], [])
            stack[-1].block.append(d)  # type: ignore[union-attr]
            stack.append(d)
            words = []
        else:
            assert not words, f"directive without ';' before '}}': {words}"
            stack.pop()
    assert len(stack) == 1 and not words, "unbalanced braces in nginx.conf"
    return root


@dataclass
class Front:
    """The parsed http block with nginx's location selection."""

    http: Directive
    server: Directive
    maps: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, text: str) -> Front:
        http = parse(text).one("http")
        front = cls(http=http, server=http.one("server"))
        for m in http.all("map"):
            source, var = m.args
            table = {d.name: d.args[0] for d in m.block or []}
            front.maps[var] = (source, table)
        return front

    def location(self, path: str) -> Directive:
        """The location nginx picks for ``path`` (no nested locations here)."""
        locations = self.server.all("location")
        for loc in locations:
            if loc.args[0] == "=" and loc.args[1] == path:
                return loc
        prefixes = [
            loc
            for loc in locations
            if (len(loc.args) == 1 and not loc.args[0].startswith("@")) or loc.args[0] == "^~"
        ]
        best = max(
            (loc for loc in prefixes if path.startswith(loc.args[-1])),
            key=lambda loc: len(loc.args[-1]),
            default=None,
        )
        if best is not None and best.args[0] == "^~":
            return best
        for loc in locations:
            if loc.args[0] in ("~", "~*"):
                flags = re.IGNORECASE if loc.args[0] == "~*" else 0
                if re.search(loc.args[1], path, flags):
                    return loc
        assert best is not None, f"no location for {path}"
        return best

    def upstream_for(self, method: str, path: str) -> str:
        """The upstream block a request goes to (``$var`` resolved through its map)."""
        (target,) = self.location(path).one("proxy_pass").args
        assert target.startswith("http://"), target
        name = target.removeprefix("http://")
        if name.startswith("$"):
            source, table = self.maps[name]
            assert source == "$request_method", source
            name = table.get(method, table["default"])
        assert name in self.upstreams(), name
        return name

    def upstreams(self) -> dict[str, Directive]:
        return {u.args[0]: u for u in self.http.all("upstream")}


def _size(value: str) -> int:
    units = {"k": 1024, "m": MiB, "g": 1024 * MiB}
    return int(value[:-1]) * units[value[-1].lower()] if value[-1].isalpha() else int(value)


ROUTES = [
    ("POST", "/v1/models/mdl_01HZ/predict", "serve"),
    ("GET", "/v1/models/mdl_01HZ/predict", "web"),  # web answers the API's 405 problem
    ("GET", "/v2", "serve"),
    ("GET", "/v2/health/live", "serve"),
    ("GET", "/v2/health/ready", "serve"),
    ("GET", "/v2/models/mdl_01HZ", "serve"),
    ("POST", "/v2/models/mdl_01HZ/infer", "serve"),
    ("POST", "/v2/models/mdl_01HZ/versions/1/infer", "serve"),
    ("GET", "/v1/models/mdl_01HZ", "web"),
    ("POST", "/v1/models/mdl_01HZ/predict/extra", "web"),
    ("POST", "/v1/models/predict", "web"),
    ("POST", "/v1/datasets", "web"),
    ("GET", "/v1/openapi.json", "web"),
    ("GET", "/v2x", "web"),
    ("GET", "/healthz", "web"),
    ("GET", "/metrics", "web"),  # not public: Prometheus scrapes each serve replica
    ("GET", "/", "web"),
    ("POST", "/stripe/webhook", "web"),
]


@pytest.fixture(scope="module")
def front() -> Front:
    return Front.load(CONF.read_text())


@pytest.mark.parametrize(("method", "path", "upstream"), ROUTES)
def test_locations_route_predict_and_v2_to_serve_the_rest_to_web(front, method, path, upstream):
    assert front.upstream_for(method, path) == upstream


def test_body_limits_match_the_apps(front, monkeypatch):
    monkeypatch.delenv("TRAINYARD_SERVE_MAX_BODY_BYTES", raising=False)
    serve_limit = ServeConfig.from_env().max_body_bytes
    for path in ("/v1/models/mdl_1/predict", "/v2/models/mdl_1/infer"):
        limit = front.location(path).one("client_max_body_size").args[0]
        assert _size(limit) == serve_limit, path
    # Uploads: the dataset limit plus room for the multipart envelope (the app's own 413
    # problem answers a file over its limit), but not much more.
    web_limit = _size(front.location("/v1/datasets").one("client_max_body_size").args[0])
    assert (
        settings.TRAINYARD_MAX_UPLOAD_BYTES
        < web_limit
        <= settings.TRAINYARD_MAX_UPLOAD_BYTES + 2 * MiB
    )


def test_upstreams_keep_connections_alive_and_match_compose(front):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert front.http.one("proxy_http_version").args == ["1.1"]
    headers = {d.args[0].lower(): d.args[1:] for d in front.http.all("proxy_set_header")}
    assert headers["connection"] == [""]  # keep-alive to the upstreams
    for name in ("x-forwarded-for", "x-forwarded-proto", "host"):
        assert name in headers, name
    ports = {}
    for name, upstream in front.upstreams().items():
        assert upstream.get("keepalive") is not None, name
        (server,) = upstream.all("server")
        host, port = server.args[0].split(":")
        assert host == name and host in compose, server.args
        ports[name] = port
        if "resolve" in server.args:  # open source nginx has it since 1.27.3
            assert upstream.get("zone") is not None and front.http.get("resolver") is not None
            tag = compose["proxy"]["image"].split(":")[1]
            assert tuple(int(p) for p in tag.split(".")[:2]) >= (1, 28), tag
    assert f"--port {ports['serve']}" in compose["serve"]["command"]
    assert f"0.0.0.0:{ports['web']}" in compose["web"]["command"]
    listen = front.server.one("listen").args[0]
    assert compose["proxy"]["ports"] == [f"{listen}:{listen}"]
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in compose["proxy"]["volumes"]


# --- the real thing, where nginx is installed ------------------------------------------------

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Upstream(ThreadingHTTPServer):
    """Answers every request with JSON naming itself, the request and its headers."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        self.name = name
        self.peers: list[int] = []  # the client port of each request: keepalive reuses one
        self.down = False  # drop every connection, open ones included, without answering
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn and uvicorn speak it

    def _answer(self) -> None:
        server: _Upstream = self.server  # type: ignore[assignment]
        if server.down:
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server.peers.append(self.client_address[1])
        out = json.dumps(
            {
                "upstream": server.name,
                "method": self.command,
                "path": self.path,
                "body": body.decode(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _answer

    def log_message(self, *args) -> None:  # quiet
        pass


@dataclass
class Running:
    port: int
    upstreams: dict[str, _Upstream]
    access_log: Path | None = None

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body or None, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def local_copy(text: str, *, ports: dict[str, int], listen: int, tmp: Path) -> str:
    """``text`` runnable outside compose: upstreams on 127.0.0.1 ports, one worker, files in
    ``tmp``. Everything else (locations, limits, headers, error pages) stays as shipped."""
    for name, port in ports.items():
        text, n = re.subn(rf"server {name}:\d+[^;]*;", f"server 127.0.0.1:{port};", text)
        assert n == 1, name
    text, n = re.subn(r"listen \d+;", f"listen 127.0.0.1:{listen};", text)
    assert n == 1
    text = re.sub(r"worker_processes \w+;", "worker_processes 1;", text)
    text = re.sub(r"error_log \S+", f"error_log {tmp}/error.log", text)
    text = re.sub(r"access_log \S+", f"access_log {tmp}/access.log", text)
    temp = "".join(
        f"    {kind}_temp_path {tmp}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return text.replace("http {\n", "http {\n" + temp, 1)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx); the parsed checks ran")
    tmp = tmp_path_factory.mktemp("nginx")
    upstreams = {name: _Upstream(name) for name in ("serve", "web")}
    threads = [threading.Thread(target=u.serve_forever, daemon=True) for u in upstreams.values()]
    for t in threads:
        t.start()
    port = _free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        local_copy(
            CONF.read_text(),
            ports={n: u.server_address[1] for n, u in upstreams.items()},
            listen=port,
            tmp=tmp,
        )
    )
    argv = [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [*argv, "-g", f"daemon off; pid {tmp}/nginx.pid;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield Running(port=port, upstreams=upstreams, access_log=tmp / "access.log")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        for u in upstreams.values():
            u.shutdown()
            u.server_close()


def test_nginx_routes_for_real(running):
    for method, path, upstream in ROUTES:
        status, _, body = running.request(
            method, path + "?limit=5", body=b"{}" if method == "POST" else b""
        )
        assert status == 200, (method, path, body)
        seen = json.loads(body)
        assert (seen["upstream"], seen["method"], seen["path"]) == (
            upstream,
            method,
            path + "?limit=5",
        )


def test_nginx_access_log_carries_no_tokens(running):
    secrets = ["inv-s3cret-token", "MTIzNDU2Nzg", "cz9x-reset-s3cret", "Nzg5MDEy", "confirm-s3cret"]
    paths = [
        f"/invitations/accept?token={secrets[0]}",
        f"/signup?invitation={secrets[0]}",
        f"/password-reset/{secrets[1]}/{secrets[2]}",
        f"/signup/confirm/{secrets[3]}/{secrets[4]}",
    ]
    for path in paths:
        assert running.request("GET", path, headers={"Referer": f"http://x{path}"})[0] == 200
    assert running.access_log is not None
    deadline = time.monotonic() + 5
    while True:  # nginx writes the line after the response
        text = running.access_log.read_text() if running.access_log.exists() else ""
        if text.count("\n") >= len(paths) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    lines = text.splitlines()[-len(paths) :]
    assert all(s not in text for s in secrets), text
    assert '"GET /invitations/accept HTTP/1.1"' in lines[0]
    assert '"GET /password-reset/-/- HTTP/1.1"' in lines[2]
    assert '"GET /signup/confirm/-/- HTTP/1.1"' in lines[3]


def test_nginx_passes_body_and_forwarding_headers(running):
    status, _, body = running.request(
        "POST",
        "/v1/models/mdl_1/predict",
        body=b'{"inputs": ["great"]}',
        headers={
            "Authorization": "Bearer ty_live_x",
            "Idempotency-Key": "k1",
            "Content-Type": "application/json",
            "Host": "api.example.test",
        },
    )
    assert status == 200
    seen = json.loads(body)
    assert seen["body"] == '{"inputs": ["great"]}'
    h = seen["headers"]
    assert h["authorization"] == "Bearer ty_live_x" and h["idempotency-key"] == "k1"
    assert h["host"] == "api.example.test"
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-proto"] == "http"
    assert h.get("connection", "").lower() != "close"


def test_nginx_passes_one_request_id_to_the_apps_and_logs_it(running):
    # A plain id from the client is kept end to end.
    status, _, body = running.request("GET", "/v1/datasets", headers={"X-Request-ID": "req-abc.1"})
    assert status == 200 and json.loads(body)["headers"]["x-request-id"] == "req-abc.1"
    # None, or one that is not a plain id (log injection, too long): nginx's own, 32 hex.
    for sent in (None, 'x" injected=1', "-leading", "a" * 129):
        headers = {"X-Request-ID": sent} if sent is not None else {}
        status, _, body = running.request("GET", "/v1/datasets", headers=headers)
        rid = json.loads(body)["headers"]["x-request-id"]
        assert status == 200 and re.fullmatch(r"[0-9a-f]{32}", rid), (sent, rid)
    deadline = time.monotonic() + 5
    while "request_id=req-abc.1" not in running.access_log.read_text():
        assert time.monotonic() < deadline, running.access_log.read_text()
        time.sleep(0.05)
    assert "injected" not in running.access_log.read_text()


def test_nginx_reuses_upstream_connections(running):
    serve = running.upstreams["serve"]
    before = len(serve.peers)
    for _ in range(3):
        assert running.request("GET", "/v2/health/live")[0] == 200
    assert len(set(serve.peers[before:])) == 1, serve.peers[before:]


def _declared_body(running: Running, path: str, length: int):
    """Send headers announcing ``length`` bytes and no body: nginx judges the declared size."""
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=10)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def test_nginx_refuses_oversized_bodies_as_problems(running, front):
    for path in ("/v1/models/mdl_1/predict", "/v2/models/mdl_1/infer", "/v1/datasets"):
        limit = _size(front.location(path).one("client_max_body_size").args[0])
        status, ctype, body = _declared_body(running, path, limit + 1)
        assert status == 413 and ctype == "application/problem+json", (path, status)
        problem = json.loads(body)
        assert problem["status"] == 413 and problem["type"].endswith("/payload-too-large")


def _raw(running: Running, data: bytes) -> tuple[bytes, bytes]:
    """Send ``data`` as it is (nginx parses it, no client library tidies it); (head, body)."""
    with socket.create_connection(("127.0.0.1", running.port), timeout=10) as s:
        s.sendall(data)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"GET /\x00x HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    ],
    ids=["bad-header", "nul-in-path", "uri-too-long", "header-too-large"],
)
def test_nginx_answers_its_own_errors_as_problems(running, request_bytes, status):
    head, body = _raw(running, request_bytes)
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"Content-Type: application/problem+json" in head, head
    problem = json.loads(body)
    assert problem["status"] == status and problem["type"].startswith(
        "https://trainyard.dev/problems/"
    )


def test_nginx_answers_a_problem_when_an_upstream_is_down(running):
    # Last in the module: the stand-in web server goes away for good.
    web = running.upstreams["web"]
    web.down = True  # the connections nginx keeps alive break too
    web.shutdown()
    web.server_close()
    status, headers, body = running.request("GET", "/healthz")
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "5"
    assert json.loads(body)["status"] == 503
