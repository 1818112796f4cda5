"""Fixtures for the data tests: a local HTTP server on 127.0.0.1 (the tests never touch any
other network) and the path of the reference MNIST files."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.routes[path] = (body, mode)``; mode "ok", "truncate" (announce the full
    Content-Length, send half, close) or "slow" (sleep ``server.delay`` first). Anything else
    is a 404. Each request is handled once, with no loop: nothing here can spin."""

    protocol_version = "HTTP/1.0"  # one request per connection, closed after the response

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        body, mode = route
        if mode == "slow":
            time.sleep(self.server.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body[: len(body) // 2] if mode == "truncate" else body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def log_message(self, format, *args):  # keep test output quiet
        pass


class LocalServer:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)  # port 0: a free port
        self.httpd.daemon_threads = True
        self.httpd.routes = {}
        self.httpd.requests = []
        self.httpd.delay = 0.0
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes, mode: str = "ok") -> str:
        self.httpd.routes[path] = (body, mode)
        return self.url(path)

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests


@pytest.fixture
def http_server():
    """A threaded HTTP server on 127.0.0.1 and a random free port, stopped after the test."""
    server = LocalServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
        assert not server.thread.is_alive()


@pytest.fixture
def shared_mnist() -> Path:
    """The reference MNIST folder (../shared/data/mnist from the repository root)."""
    if not SHARED_MNIST.is_dir():
        raise FileNotFoundError(f"reference MNIST folder {SHARED_MNIST} is missing")
    return SHARED_MNIST
