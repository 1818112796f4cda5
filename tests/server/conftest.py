"""Shared fixtures of the lab server tests.

* ``app`` / ``client``: an app around a seeded SimpleCNN and Starlette's test client.
* ``lab`` / ``browser`` / ``page`` / ``shot`` / ``open_playground``: a real uvicorn server and
  Debian's Chromium (/usr/bin/chromium) driven by Playwright. They skip, with the reason, where
  Playwright or Chromium is missing (``.ci/run`` installs Chromium); ``page`` fails its test on
  any console error; ``shot`` saves full-page screenshots to $CNNLAB_SCREENSHOTS if set
  (``CNNLAB_SCREENSHOTS=docs/screenshots`` refreshes the README's pictures), otherwise to a
  temporary folder, so a test run leaves the checkout as it was.
"""
from __future__ import annotations

import io
import os
import shutil
import socket
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

with warnings.catch_warnings():  # starlette >= 1.0 suggests httpx2; httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import cnnlab
from cnnlab.server import create_app


@pytest.fixture(scope="module")
def model():
    return cnnlab.models.zoo.simple_cnn(seed=0)


@pytest.fixture
def app(model, tmp_path):
    return create_app(model, "simple_cnn", runs_dir=tmp_path / "runs", allowed_hosts={"testserver"})


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c
    job = app.state.job
    if job.running:
        job.stop()
    job.join(60)


def digit_png(size: int = 280) -> bytes:
    """A hand-drawn-looking "7": dark strokes on white, as the canvas sends it."""
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    s = size / 280
    d.line([(70 * s, 60 * s), (210 * s, 60 * s), (120 * s, 230 * s)], fill=0, width=int(22 * s), joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def decode(arr: dict) -> np.ndarray:
    from cnnlab.server.encode import array_from_json

    return array_from_json(arr)


CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("CNNLAB_SCREENSHOTS") or tempfile.mkdtemp(prefix="cnnlab-screenshots-"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A real uvicorn server with the pretrained SimpleCNN on a free port, in a thread: (app, url)."""
    import uvicorn

    port = _free_port()
    app = create_app(cnnlab.models.zoo.simple_cnn(pretrained=True), "simple_cnn (pretrained)", runs_dir=tmp_path / "runs",
                     allowed_hosts={f"127.0.0.1:{port}"})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
    app.state.job.join(30)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless; skips the test where Playwright or Chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need the playwright package "
                                                                  "(pip install playwright; no browser download needed)")
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"the browser tests drive Debian's Chromium at {CHROMIUM}, which is missing (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def expected_console_errors():
    """Texts of console errors a test provokes on purpose (e.g. "400 (Bad Request)"); others still fail it."""
    return []


@pytest.fixture
def page(browser, lab, expected_console_errors):
    """A page on the lab, its Draw page loaded; fails the test on any console error it did not expect."""
    _, url = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_selector("#predicted[data-request='1']")
    yield page
    page.close()
    unexpected = [e for e in errors if not any(text in e for text in expected_console_errors)]
    assert unexpected == [], f"console errors: {unexpected}"


@pytest.fixture
def shot():
    """shot(page, name): a full-page screenshot saved as SHOTS/<name>.png (returns its path)."""
    def save(page, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return save


@pytest.fixture
def open_playground(page):
    """open_playground(name): click the playground's tab and wait until its module has built the page."""
    def open_(name):
        page.click(f"#tab-play-{name}")
        page.wait_for_selector(f"#page-play-{name}[data-ready='1']")
        return page.locator(f"#page-play-{name}")
    return open_
