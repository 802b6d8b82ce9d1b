"""bench/serving.py's wrk plumbing: the Lua script's JSON line and its parser, against a real
wrk and a tiny local HTTP server (no timing asserted: speed goals live in the benchmark)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def serving():
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "bench" / "serving.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_parse_takes_the_last_wrk_json_line(serving):
    out = 'Running 1s test\nWRK_JSON {"requests": 1}\nnoise\nWRK_JSON {"requests": 7}\n'
    assert serving.parse_wrk_output(out) == {"requests": 7}


def test_parse_without_the_line_says_so(serving):
    with pytest.raises(ValueError, match="no WRK_JSON line"):
        serving.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_cell_counts_only_2xx_as_throughput(serving):
    raw = {
        "requests": 100,
        "duration_us": 2_000_000,
        "bytes": 1,
        "non2xx": 20,
        "connect": 1,
        "read": 2,
        "write": 0,
        "timeout": 3,
        "p50_us": 1500,
        "p90_us": 2500,
        "p99_us": 9000,
        "max_us": 12000,
        "mean_us": 1800.0,
    }
    cell = serving.Cell.from_wrk("sys", "b32-c8", 32, 8, raw)
    assert (cell.ok, cell.rps, cell.inputs_per_s) == (80, 40.0, 1280.0)
    assert (cell.p50_ms, cell.p99_ms) == (1.5, 9.0)
    assert (cell.non2xx, cell.socket_errors, cell.errors) == (20, 6, 26)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_lua_script_posts_the_body_and_reports_json(serving, tmp_path):
    seen: list[tuple[str, str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("Authorization", ""), body))
            status = 429 if self.path == "/refuse" else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"inputs": ["a", "b"]}))
    serving.WRK = shutil.which("wrk")
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        ok = serving.wrk_run(f"{base}/ok", body, conns=1, seconds=1, auth="k1")
        refused = serving.wrk_run(f"{base}/refuse", body, conns=1, seconds=1)
    finally:
        httpd.shutdown()
    assert ok["requests"] > 0 and ok["non2xx"] == 0
    assert refused["requests"] > 0 and refused["non2xx"] == refused["requests"]
    assert ("/ok", "Bearer k1", body.read_bytes()) in seen
    assert ("/refuse", "", body.read_bytes()) in seen
    assert ok["p50_us"] <= ok["p99_us"] <= ok["max_us"]
