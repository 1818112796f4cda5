"""Fuzz the endpoints: random methods, paths, headers and bodies. The server never answers 5xx,
never dies (a good request still works after each burst), never holds more than one training
run, and its memory stays bounded."""
from __future__ import annotations

import json
import random
import resource
import threading

import pytest

from tests.server.conftest import digit_png

PATHS = ["/", "/api/model", "/api/predict", "/api/explain", "/api/train/options", "/api/train/start",
         "/api/train/stop", "/api/train/resume", "/api/train/use", "/api/train/status", "/static/app.js",
         "/static/../pyproject.toml", "/api/predict/../model", "/%00", "/api/" + "a" * 3000]
TYPES = ["application/json", "image/png", "image/jpeg", "text/plain", "", "multipart/form-data; boundary=x",
         "application/octet-stream", "image/svg+xml"]


def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(9 if depth < 3 else 6)
    return [lambda: None, lambda: rng.choice([True, False]), lambda: rng.randint(-2**70, 2**70),
            lambda: rng.choice([0, 1, 3, 9, 27, 783, 784, 10**6]), lambda: rng.uniform(-1e9, 1e9),
            lambda: rng.choice(["", "ox_cnn", "lines_cnn", "mnist", "adam", "../etc/passwd", "NaN", "x" * 500]),
            lambda: [_json_value(rng, depth + 1) for _ in range(rng.randrange(6))],
            lambda: [rng.randrange(256) for _ in range(rng.choice([783, 784, 785]))],
            lambda: {rng.choice(["pixels", "layer", "channel", "row", "col", "example", "model", "data", "epochs",
                                 "lr", "limit", "batch_size", "augment", "seed", "junk"]): _json_value(rng, depth + 1)
                     for _ in range(rng.randrange(6))}][kind]()


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 5000))
    if kind == 2:
        return json.dumps(_json_value(rng)).encode()
    if kind == 3:
        png = digit_png(56)
        cut = rng.randrange(len(png))
        return png[:cut] + rng.randbytes(rng.randrange(50)) + png[cut + 10:]  # a damaged image
    if kind == 4:
        return b"[" * 40000 + b"]" * 40000  # deep nesting
    return json.dumps({"pixels": [rng.randrange(256) for _ in range(784)], "layer": rng.randrange(-2, 12),
                       "channel": rng.randrange(-1, 70), "row": rng.randrange(-1, 30), "col": rng.randrange(-1, 30)}).encode()


def _training_threads() -> int:
    return sum(t.name == "cnnlab-lab-training" for t in threading.enumerate())


@pytest.mark.parametrize("seed", [0, 1])
def test_fuzzed_requests_never_break_the_server(client, app, seed):
    rng = random.Random(seed)
    good = digit_png()
    client.post("/api/predict", content=good, headers={"content-type": "image/png"})  # warm up before measuring
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB
    statuses = set()
    for n in range(250):
        method = rng.choice(["GET", "POST", "PUT", "DELETE", "POST", "POST"])
        headers = {"content-type": rng.choice(TYPES)}
        if rng.random() < 0.1:
            headers["content-length"] = rng.choice(["-1", "abc", "99999999999"])
        body = _body(rng) if method != "GET" else None
        try:
            r = client.request(method, rng.choice(PATHS), content=body, headers=headers)
        except Exception as err:  # a malformed request the HTTP client itself refuses to send
            assert "content-length" in headers or isinstance(err, (ValueError, TypeError)), err
            continue
        statuses.add(r.status_code)
        assert r.status_code < 500, (method, r.status_code, r.text[:300])
        if r.headers.get("content-type", "").startswith("application/json"):
            assert "error" in r.json() or r.status_code == 200
        assert _training_threads() <= 1
        if n % 50 == 0:  # still answers a good request
            ok = client.post("/api/predict", content=good, headers={"content-type": "image/png"})
            assert ok.status_code == 200 and len(ok.json()["probabilities"]) == 10
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert growth_mb < 200, f"peak memory grew by {growth_mb:.0f} MB during the fuzzing"
    assert statuses & {400, 404, 405, 413, 415}
    job = app.state.job
    if job.running:
        job.stop()
    job.join(60)
    assert _training_threads() == 0
