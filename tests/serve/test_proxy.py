"""``serve --upstream``: what the data plane does not answer goes to the control plane as sent
(``make run``'s single port)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.testclient import TestClient

from tests.serve.conftest import serve_config


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = json.dumps({"path": self.path, "headers": headers}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_other_paths_are_forwarded_with_their_query_and_headers(
    transactional_db, clean_redis, upstream
):
    from serve.app import create_app

    with TestClient(create_app(serve_config(upstream=upstream))) as client:
        # A value with surrounding whitespace (an empty $KEY in a script) is still forwarded:
        # HTTP ignores that whitespace, the proxy strips it.
        r = client.get(
            "/v1/datasets?limit=2", headers={"X-Foo": "bar ", "Authorization": "Bearer "}
        )
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["path"] == "/v1/datasets?limit=2"
    assert seen["headers"]["x-foo"] == "bar"
    assert seen["headers"]["authorization"] == "Bearer"
    assert seen["headers"]["x-forwarded-proto"] == "http"
