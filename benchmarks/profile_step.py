"""Where a batch-64 SimpleCNN training step goes: each fused step, the optimizer steps, and the
pieces of the conv2 block (im2col, the three GEMMs with GFLOP/s, col2im), cnnlab beside PyTorch.

Each framework runs in its own fresh process (their threads busy-wait and would fight), one
after the other, ``--rounds`` times, so both meet the same machine. ``--cpu`` reports process
CPU time instead of wall time: on a shared machine, with ``--threads 1``, that measures the
work itself (what BENCHMARKS.md's round-two profile shows). A copy of older code can be
profiled beside the current one with ``--before PATH`` (a folder holding that ``cnnlab``).

    python benchmarks/profile_step.py [--threads 2] [--rounds 2] [--cpu] [--before /tmp/old]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

B = 64


def _med(fn, n, cpu):
    clock = time.process_time if cpu else time.perf_counter
    for _ in range(3):
        fn()
    ts = []
    for _ in range(n):
        t = clock()
        fn()
        ts.append(clock() - t)
    return statistics.median(ts) * 1e3


def _cnnlab(cpu):
    from cnnlab.engines import runtime
    from cnnlab.models.zoo import simple_cnn
    from cnnlab.training.optim import get_optimizer

    rng = np.random.default_rng(0)
    model = simple_cnn(seed=0)
    h = rng.standard_normal((B, 1, 28, 28), dtype=np.float32)
    for i, step in enumerate(model.plan((1, 28, 28))):
        out = step.forward(h, training=True)
        d = rng.standard_normal(out.shape, dtype=np.float32)

        def f(step=step, h=h, d=d, first=i == 0):
            step.forward(h, training=True)
            if first:
                step.backward_params(d)  # no input gradient: the input is data
            else:
                step.backward(d)
        yield f"step {i} {type(step).__name__} {h.shape[1:]}", _med(f, 30, cpu)
        h = out
    for name, kw in (("sgd", dict(lr=0.01, momentum=0.9)), ("adam", dict(lr=1e-3))):
        opt, params = get_optimizer(name, **kw), model.parameters()
        opt.set_parameters(params)
        for p in params:
            p.grad = rng.standard_normal(p.shape, dtype=np.float32)
        yield f"optimizer {name}", _med(opt.step, 100, cpu)
    # the conv2 block's pieces, one chunk of 37 images (as the engine runs it), scaled to 64
    k = runtime.kernels()
    C, H, F, nb = 32, 14, 64, 37
    K, P = C * 9, H * H
    x = rng.standard_normal((nb, C, H, H), dtype=np.float32)
    w2 = rng.standard_normal((F, K), dtype=np.float32)
    cols, g = np.empty((K, nb * P), np.float32), np.empty((F, nb * P), np.float32)
    d2 = rng.standard_normal((F, nb * P), dtype=np.float32)
    dx = np.empty_like(x)
    gf, scale = 2 * F * K * nb * P / 1e6, B / nb
    pieces = [("im2col", lambda: k.im2col(x, 3, 3, 1, 1, 1, 1, H, H, cols), None),
              ("GEMM forward w2 @ cols (64x288 @ 288x7252)", lambda: np.matmul(w2, cols, out=g), gf),
              ("GEMM dW cols @ d2.T", lambda: cols @ d2.T, gf),
              ("GEMM dX w2.T @ d2", lambda: np.matmul(w2.T, d2, out=cols), gf),
              ("col2im", lambda: k.col2im(cols, 3, 3, 1, 1, 1, 1, H, H, dx), None)]
    for name, fn, flops in pieces:
        ms = _med(fn, 30, cpu)
        yield f"conv2 block: {name}" + (f" [{flops / ms:.0f} GFLOP/s]" if flops else ""), ms * scale
    a = rng.random((2048, 2048), dtype=np.float32)
    yield "matmul 2048^3 [GFLOP/s = 17180 / ms]", _med(lambda: np.matmul(a, a), 5, cpu)


def _torch(cpu, threads):
    import torch

    torch.set_num_threads(threads)
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    groups = [("conv1+relu+pool", net[0:3]), ("conv2+relu+pool", net[3:6]), ("flatten", net[6:7]),
              ("dense 3136->128", net[7:8]), ("relu", net[8:9]), ("dense 128->10", net[9:10])]
    h = torch.from_numpy(np.random.default_rng(0).standard_normal((B, 1, 28, 28), dtype=np.float32))
    for i, (name, g) in enumerate(groups):
        xin = h.detach().clone().requires_grad_(i > 0)
        out = g(xin)
        d = torch.randn(out.shape)

        def f(g=g, xin=xin, d=d):
            xin.grad = None
            for p in g.parameters():
                p.grad = None
            g(xin).backward(d)
        yield f"step {i} {name}", _med(f, 30, cpu)
        h = out.detach()
    params = list(net.parameters())
    for p in params:
        p.grad = torch.randn(p.shape)
    for name, opt in (("sgd", torch.optim.SGD(params, lr=0.01, momentum=0.9)),
                      ("adam", torch.optim.Adam(params, lr=1e-3))):
        yield f"optimizer {name}", _med(opt.step, 100, cpu)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--cpu", action="store_true", help="process CPU time instead of wall time")
    p.add_argument("--before", metavar="PATH", help="also profile the cnnlab found in PATH (older code)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        rows = _torch(args.cpu, args.threads) if args.worker == "torch" else _cnnlab(args.cpu)
        for name, ms in rows:
            print(f"{args.worker:>8} {ms:9.3f} ms  {name}", flush=True)
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sides = ([("before", args.before)] if args.before else []) + [("cnnlab", here), ("torch", here)]
    env = dict(os.environ, **{k: str(args.threads) for k in
                              ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    print(f"batch {B}, float32, {args.threads} thread(s), {'process CPU' if args.cpu else 'wall'} ms, "
          f"medians; load average {os.getloadavg()[0]:.2f}")
    for r in range(args.rounds):
        for label, path in sides:
            cmd = [sys.executable, __file__, "--worker", label, "--threads", str(args.threads)] + \
                  (["--cpu"] if args.cpu else [])
            subprocess.run(cmd, env=dict(env, PYTHONPATH=path), check=True)


if __name__ == "__main__":
    main()
