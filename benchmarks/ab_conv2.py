"""The conv2 block (32->64, 3x3 @14, + ReLU + 2x2 max pool; forward + backward) in ONE process:
older cnnlab code, the current code under a few settings of ``cnnlab.engines.numba_conv``,
and PyTorch, call after call in turn, several rounds, medians (so all meet the same machine).
PyTorch's OpenMP workers spin after each call and slow the next; ``--no-torch`` leaves it out
(``benchmarks/profile_step.py`` runs it in its own process).

``--before PATH`` (a folder holding an older ``cnnlab``, e.g. from ``git archive``) is copied
to a temporary folder as the package ``cnnlab_before`` (its imports rewritten), so both
versions load side by side. ``--cpu``: process CPU time (the work) instead of wall time.

    OMP_NUM_THREADS=2 NUMBA_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 \\
        python benchmarks/ab_conv2.py [--batch 64] [--rounds 8] [--cpu] [--before /tmp/old]
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

#: the current code's settings compared: name -> (_KEEP_BYTES, _CHUNK_BYTES), None for the defaults
SETTINGS = {"recompute, 8 MB chunks": (0, 8 << 20), "default": None}


def _load_before(path: str):
    """The package ``cnnlab`` under ``path``, importable as ``cnnlab_before``."""
    tmp = tempfile.mkdtemp(prefix="cnnlab_before_")
    dst = os.path.join(tmp, "cnnlab_before")
    shutil.copytree(os.path.join(path, "cnnlab"), dst, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _, files in os.walk(dst):
        for name in files:
            if name.endswith(".py"):
                f = os.path.join(root, name)
                with open(f) as fh:
                    text = fh.read()
                with open(f, "w") as fh:
                    fh.write(re.sub(r"\b(from|import) cnnlab(\.|\b)", r"\1 cnnlab_before\2", text))
    sys.path.insert(0, tmp)
    return importlib.import_module("cnnlab_before.models.zoo")


def _cnnlab_step(zoo, x):
    """forward + backward of simple_cnn's fused conv2 block (plan step 1) on x (N, 32, 14, 14)."""
    step = zoo.simple_cnn(seed=0).plan((1, 28, 28))[1]
    d = np.random.default_rng(1).standard_normal(step.forward(x, training=True).shape, dtype=np.float32)

    def f():
        step.forward(x, training=True)
        step.backward(d)
    return f


def _torch_step(x, threads):
    import torch

    torch.set_num_threads(threads)
    nn = torch.nn
    block = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    xt = torch.from_numpy(x).requires_grad_(True)
    d = torch.randn(block(xt).shape)

    def f():
        xt.grad = None
        for p in block.parameters():
            p.grad = None
        block(xt).backward(d)
    return f


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--calls", type=int, default=20, help="calls of each per round (median per round)")
    p.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    p.add_argument("--before", metavar="PATH", help="also the cnnlab found in PATH (older code)")
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args()
    from cnnlab.engines import numba_conv
    from cnnlab.models import zoo

    x = np.random.default_rng(0).standard_normal((args.batch, 32, 14, 14), dtype=np.float32)
    threads = int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count()))
    runs = {}
    if args.before:
        runs["before"] = (_cnnlab_step(_load_before(args.before), x), None)
    for name, setting in SETTINGS.items():
        runs[name] = (_cnnlab_step(zoo, x), setting)
    if not args.no_torch:
        runs["PyTorch"] = (_torch_step(x, threads), None)
    clock = time.process_time if args.cpu else time.perf_counter
    default = (numba_conv._KEEP_BYTES, numba_conv._CHUNK_BYTES)
    meds = {name: [] for name in runs}
    print(f"conv2 block fwd+bwd, batch {args.batch}, {threads} thread(s), "
          f"{'process CPU' if args.cpu else 'wall'} ms; load {os.getloadavg()[0]:.2f}", flush=True)
    for name, (fn, setting) in runs.items():  # warm up (compiles, first allocations)
        numba_conv._KEEP_BYTES, numba_conv._CHUNK_BYTES = setting or default
        fn()
    for _ in range(args.rounds):
        ts = {name: [] for name in runs}
        for _ in range(args.calls):  # call after call in turn: a slow spell of the machine hits all alike
            for name, (fn, setting) in runs.items():
                numba_conv._KEEP_BYTES, numba_conv._CHUNK_BYTES = setting or default
                t = clock()
                fn()
                ts[name].append(clock() - t)
        for name in runs:
            meds[name].append(statistics.median(ts[name]) * 1e3)
    numba_conv._KEEP_BYTES, numba_conv._CHUNK_BYTES = default
    for name, ms in meds.items():
        print(f"{name:>24}: median {statistics.median(ms):7.3f} ms  "
              f"(rounds {' '.join(f'{m:.2f}' for m in ms)})")
    print(f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
