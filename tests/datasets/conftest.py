"""Fixtures for the data tests: a local HTTP server on 127.0.0.1 (the tests never touch any
other network), the MNIST files the package ships, and an optional second, independent copy."""
from __future__ import annotations

import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cnnlab.datasets.mnist import SHIPPED_DIR

# A second MNIST copy, independent of the package, exists only on the project's own machines
# (../shared beside the checkout) or where a user points CNNLAB_MNIST_DIR. Read at import, before
# any test's monkeypatch clears the variable.
REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_MNIST_CANDIDATES = tuple(Path(p) for p in (os.environ.get("CNNLAB_MNIST_DIR"),
                                                      REPO_ROOT.parent / "shared" / "data" / "mnist") if p)


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
def mnist_files() -> Path:
    """The gzipped IDX files the package ships (present in every clone and install)."""
    return SHIPPED_DIR / "mnist"


@pytest.fixture
def reference_mnist() -> Path:
    """A second MNIST copy for cross-checks; the test is skipped, with the reason, when absent."""
    for folder in REFERENCE_MNIST_CANDIDATES:
        if (folder / "t10k-labels-idx1-ubyte.gz").is_file():
            return folder
    pytest.skip("no independent MNIST copy to cross-check against (looked in "
                + ", ".join(map(str, REFERENCE_MNIST_CANDIDATES))
                + "; set CNNLAB_MNIST_DIR to one); the shipped copy is still verified by MD5")
