"""Shared fixtures of the lab server tests: an app around a seeded SimpleCNN and its test client."""
from __future__ import annotations

import io
import warnings

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
