#!/usr/bin/env python
"""Memory check: inference over all 70,000 MNIST images in bounded memory, and no growth
across training epochs.

1. ``predict`` and ``evaluate`` over the 70,000 MNIST images (train + test). The images
   themselves take 220 MB as float32; the work on top of them must stay bounded by the batch
   size, not grow with N. The peak RSS above the data is measured (the kernel's VmHWM mark,
   reset before each step) for 10,000 and for 70,000 images: the two must be about equal.
2. ``fit`` for several epochs on a subset, printing the resident memory at the end of every
   epoch: after the first epoch (allocator warm-up) it must stay flat.

Usage::

    python scripts/memory_check.py                       # simple_cnn, 6 training epochs on 2,000 images
    python scripts/memory_check.py --model lenet5 --epochs 8 --train-images 4000

Exit status 1 if a check fails (thresholds: --max-overhead-mb, --max-growth-mb).
"""
from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time

import numpy as np

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def trim() -> None:
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure(label: str, fn):
    """Run ``fn`` and return (result, seconds, peak MB above the RSS before it)."""
    trim()
    before = rss_mb()
    reset_peak()
    t0 = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - t0
    overhead = peak_mb() - before
    print(f"  {label:<34} {seconds:7.1f} s   RSS before {before:7.1f} MB   peak +{overhead:6.1f} MB", flush=True)
    return result, seconds, overhead


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="simple_cnn")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--train-images", type=int, default=2000)
    p.add_argument("--max-overhead-mb", type=float, default=600.0, help="peak above the data, per inference pass")
    p.add_argument("--max-growth-mb", type=float, default=30.0, help="RSS growth from epoch 2 to the last")
    a = p.parse_args(argv)

    from cnnlab.training.callbacks import Callback
    from cnnlab.datasets import add_channel_axis, load_mnist, to_float
    from cnnlab.models.zoo import get_model

    t0 = time.perf_counter()
    print(f"python scripts/memory_check.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"start: RSS {rss_mb():.1f} MB")
    (x_train, y_train), (x_test, y_test) = load_mnist()
    x = add_channel_axis(to_float(np.concatenate([x_train, x_test])))  # (70000, 1, 28, 28) float32
    y = np.concatenate([y_train, y_test]).astype(np.int64)
    del x_train, x_test
    trim()
    x_mb = x.nbytes / 2**20
    print(f"70,000 images loaded as float32 ({x_mb:.0f} MB): RSS {rss_mb():.1f} MB")
    model = get_model(a.model, seed=0)
    model.compile("adam", lr=1e-3)
    print(f"model {a.model}: {model.num_parameters():,} parameters, batch size {a.batch_size}")

    failures = []
    print("1. inference")
    # the first call pays one-time costs (JIT compilation of optional kernels, allocator
    # warm-up) that do not depend on N: measure them apart
    measure("warm-up: predict on 512 images", lambda: model.predict(x[:512], batch_size=a.batch_size))
    overheads = {}
    for n in (10_000, 70_000):
        probs, secs, over_p = measure(f"predict on {n:,} images", lambda n=n: model.predict(x[:n], batch_size=a.batch_size))
        assert probs.shape == (n, 10) and np.all(np.isfinite(probs))
        out_mb = probs.nbytes / 2**20
        del probs
        (loss, acc), _, over_e = measure(f"evaluate on {n:,} images", lambda n=n: model.evaluate(x[:n], y[:n], batch_size=a.batch_size))
        print(f"    ({n / secs:,.0f} images/s; the (N, 10) output itself is {out_mb:.1f} MB; loss {loss:.3f}, accuracy {acc:.3f})")
        overheads[n] = (over_p - out_mb, over_e)
    for n, (op, oe) in overheads.items():
        if max(op, oe) > a.max_overhead_mb:
            failures.append(f"inference on {n:,} images used {max(op, oe):.0f} MB above the data (limit {a.max_overhead_mb:.0f})")
    growth = max(overheads[70_000]) - max(overheads[10_000])
    print(f"  peak above the data, 70,000 vs 10,000 images: {max(overheads[70_000]):.1f} vs "
          f"{max(overheads[10_000]):.1f} MB (difference {growth:+.1f} MB: bounded by the batch, not by N)")
    if growth > 50:
        failures.append(f"inference memory grows with N: +{growth:.0f} MB from 10,000 to 70,000 images")

    print(f"2. training {a.epochs} epochs on {a.train_images:,} images")

    class RssPerEpoch(Callback):
        def __init__(self):
            super().__init__()
            self.rss = []

        def on_epoch_end(self, epoch, logs=None):
            trim()
            self.rss.append(rss_mb())
            print(f"  epoch {epoch + 1}: loss {logs['loss']:.4f}  RSS {self.rss[-1]:7.1f} MB", flush=True)

    xs, ys = x[:a.train_images].copy(), y[:a.train_images].copy()
    del x
    trim()
    rec = RssPerEpoch()
    print(f"  before training: RSS {rss_mb():.1f} MB")
    model.fit(xs, ys, epochs=a.epochs, batch_size=64, seed=0, verbose=0, augment=2, validation_split=0.1,
              callbacks=[rec], doctor=True)
    if len(rec.rss) >= 3:
        drift = rec.rss[-1] - rec.rss[1]
        slope = np.polyfit(np.arange(1, len(rec.rss)), rec.rss[1:], 1)[0]
        print(f"  RSS from epoch 2 to epoch {len(rec.rss)}: {drift:+.1f} MB ({slope:+.2f} MB per epoch)")
        if drift > a.max_growth_mb:
            failures.append(f"RSS grew {drift:.0f} MB over {len(rec.rss) - 1} epochs (limit {a.max_growth_mb:.0f})")
    lifetime_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - t0:.0f} s; peak RSS of the whole process {lifetime_peak:.0f} MB "
          f"(of which {x_mb:.0f} MB are the 70,000 float32 images)")
    for f in failures:
        print("FAIL", f)
    print("OK" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
