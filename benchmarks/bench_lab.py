#!/usr/bin/env python
"""Speed of the lab in the browser (``cnnlab lab``): a benchmark script, not a timed test.

1. Draw: a 280x280 canvas PNG -> preprocessing, probabilities and every feature map, as JSON
   (``POST /api/predict`` through the whole ASGI app, in process). p50/p95 over --requests
   drawings (MNIST test digits scaled up to the canvas size). Target p95 <= 100 ms for simple_cnn.
2. Why this value?: ``POST /api/explain`` on random units of every layer with a map, and logits.
   Target p95 <= 150 ms.
3. Training with the live page: the Train page's worker (live callback, doctor, checkpoint,
   CSV log) while a client reads a snapshot every 0.25 s as the page's event stream does,
   against plain ``fit`` with the same settings and the same checkpoint and CSV log, as
   ``cnnlab train`` runs it. Interleaved repeats; medians. Target: <= 10% slower.

Usage::

    python benchmarks/bench_lab.py                      # all three, simple_cnn (pretrained)
    python benchmarks/bench_lab.py --requests 300 --train-images 6000 --repeats 3

The figures depend on the machine's load: say so when you quote them.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _client(model, runs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from cnnlab.server import create_app

    app = create_app(model, "bench", runs_dir=runs, allowed_hosts={"testserver"})
    return app, TestClient(app)


def _canvas_pngs(n: int) -> list[bytes]:
    """MNIST test digits as the canvas sends them: 280x280, dark ink on white, PNG."""
    from PIL import Image

    from cnnlab.datasets import load_mnist

    _, (x, _) = load_mnist()
    out = []
    for k in range(n):
        img = Image.fromarray(255 - x[k]).resize((280, 280), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _percentiles(times) -> str:
    """Wall-clock p50/p95/max, and the CPU time per request (all threads: what a quiet machine
    would roughly take; on a loaded one the wall clock also holds the wait for a core)."""
    wall, cpu = zip(*times)
    q = np.percentile(wall, [50, 95])
    c = np.percentile(cpu, [50, 95])
    return (f"p50 {q[0]:.1f} ms, p95 {q[1]:.1f} ms, max {max(wall):.1f} ms over {len(wall)} requests "
            f"(CPU time p50 {c[0]:.1f} ms, p95 {c[1]:.1f} ms)")


def _timed(fn):
    """(wall ms, CPU ms of this process, all threads) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return 1000 * (time.perf_counter() - t0), 1000 * (time.process_time() - c0)


def bench_draw(client, n: int) -> list[float]:
    pngs = _canvas_pngs(n)
    for png in pngs[:5]:  # warm-up: compiled kernels, caches
        client.post("/api/predict", content=png, headers={"content-type": "image/png"})
    def one(png):
        r = client.post("/api/predict", content=png, headers={"content-type": "image/png"})
        assert r.status_code == 200, r.text
        json.loads(r.content)  # the page parses it too
    return [_timed(lambda: one(png)) for png in pngs]


def bench_explain(client, model, n: int, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    pixels = client.post("/api/predict", json={"example": 0}).json()["pixels"]["data"]
    shapes = model.layer_shapes()
    units = [k for k, s in enumerate(shapes) if len(s) == 3] + [len(shapes) - 1]
    requests = []
    for _ in range(n):
        k = int(rng.choice(units))
        s = shapes[k]
        if len(s) == 3:
            requests.append({"pixels": pixels, "layer": k, "channel": int(rng.integers(s[0])),
                             "row": int(rng.integers(s[1])), "col": int(rng.integers(s[2]))})
        else:
            requests.append({"pixels": pixels, "layer": k, "channel": int(rng.integers(s[0]))})
    for body in requests[:5]:
        client.post("/api/explain", json=body)
    def one(body):
        r = client.post("/api/explain", json=body)
        assert r.status_code == 200, r.text
        json.loads(r.content)
    return [_timed(lambda: one(body)) for body in requests]


def _plain_fit(settings, folder: Path) -> float:
    """``fit`` as ``cnnlab train`` runs it: CSV log and a checkpoint every epoch, no live page."""
    from cnnlab.training.callbacks import CSVLogger
    from cnnlab.server.training_worker import load_data
    from cnnlab.training import fit
    from cnnlab.models.zoo import get_model

    (x, y), _, _ = load_data(settings)
    model = get_model(settings.model, seed=settings.seed)
    model.compile(settings.optimizer, lr=settings.lr)
    t0 = time.perf_counter()
    fit(model, x, y, epochs=settings.epochs, batch_size=settings.batch_size, validation_split=0.05,
        callbacks=[CSVLogger(folder / "history.csv")], verbose=0, seed=settings.seed,
        checkpoint=folder / "checkpoint.npz")
    return time.perf_counter() - t0


def _live_fit(settings, runs: Path) -> float:
    """The Train page's worker with a client reading the snapshot every 0.25 s (the event stream)."""
    from cnnlab.server.training_worker import TrainingJob

    job = TrainingJob(runs)
    job.start(settings)
    done = threading.Event()

    def page():
        while not done.is_set():
            json.dumps(job.snapshot())
            time.sleep(0.25)
    reader = threading.Thread(target=page)
    reader.start()
    job.join()
    done.set()
    reader.join()
    snap = job.snapshot()
    assert snap["state"] == "completed", snap["error"]
    return snap["result"]["train_seconds"]


def bench_training(images: int, epochs: int, repeats: int) -> tuple[list[float], list[float]]:
    from cnnlab.server.training_worker import TrainSettings

    settings = TrainSettings(model="simple_cnn", data="mnist", limit=images, epochs=epochs, batch_size=64,
                             optimizer="adam", lr=1e-3, augment=False, schedule="none", seed=0)
    plain, live = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        _plain_fit(TrainSettings(**{**settings.__dict__, "limit": 500}), tmp)  # warm-up (compiled kernels)
        for r in range(repeats):  # interleaved, so drifting load hits both alike
            plain.append(_plain_fit(settings, tmp))
            live.append(_live_fit(settings, tmp / f"runs{r}"))
            print(f"  repeat {r + 1}: plain fit {plain[-1]:.2f} s, with the live page {live[-1]:.2f} s", flush=True)
    return plain, live


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--train-images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)

    import cnnlab

    model = cnnlab.models.zoo.simple_cnn(pretrained=True)
    with tempfile.TemporaryDirectory() as runs:
        _, client = _client(model, runs)
        draw = bench_draw(client, args.requests)
        print(f"Draw -> probabilities + all feature maps (simple_cnn): {_percentiles(draw)}  [target p95 <= 100 ms]")
        why = bench_explain(client, model, args.requests)
        print(f"Why this value? (one unit, forward + backward):      {_percentiles(why)}  [target p95 <= 150 ms]")
    if not args.skip_training:
        print(f"Training simple_cnn on {args.train_images:,} MNIST images, {args.epochs} epoch(s), batch 64, Adam:")
        plain, live = bench_training(args.train_images, args.epochs, args.repeats)
        p, l = statistics.median(plain), statistics.median(live)
        print(f"Training overhead of the live page: median {p:.2f} s plain vs {l:.2f} s live: "
              f"{100 * (l / p - 1):+.1f}%  [target <= +10%]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
