"""Forward+backward time of every layer of the tutorial MNIST model, cnnlab beside PyTorch.

One process tree: the parent drives two worker processes, one per framework, alternately
(A B A B ...), so machine noise hits both alike. Separate processes and a short pause before
each timing matter: NumPy's OpenBLAS and PyTorch's OpenMP threads busy-wait after each call,
and would otherwise steal the cores from the other framework and distort both timings. float32, the same thread count; prints medians and the
cnnlab/PyTorch ratio per layer.

    python benchmarks/bench_layers.py [--batch 64] [--repeats 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import numpy as np

LAYERS = [  # (name, kind, args, per-sample input shape)
    ("conv1 1->32 3x3 @28", "conv", (1, 32), (1, 28, 28)),
    ("relu1 @32x28x28", "relu", (), (32, 28, 28)),
    ("pool1 2x2 @32x28x28", "pool", (), (32, 28, 28)),
    ("conv2 32->64 3x3 @14", "conv", (32, 64), (32, 14, 14)),
    ("relu2 @64x14x14", "relu", (), (64, 14, 14)),
    ("pool2 2x2 @64x14x14", "pool", (), (64, 14, 14)),
    ("flatten", "flatten", (), (64, 7, 7)),
    ("dense 3136->128", "dense", (3136, 128), (3136,)),
    ("relu3 @128", "relu", (), (128,)),
    ("dense 128->10", "dense", (128, 10), (128,)),
]


def _cnnlab_runner(kind, args, shape, batch):
    from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU

    layer = {"conv": lambda: Conv2d(*args, 3, padding=1, rng=0), "relu": ReLU, "pool": lambda: MaxPool2d(2),
             "flatten": Flatten, "dense": lambda: Dense(*args, rng=0)}[kind]()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    dout = rng.standard_normal((batch, *layer.output_shape(shape)), dtype=np.float32)

    def run():
        layer.forward(x, training=True)
        return layer.backward(dout)
    return run


def _torch_runner(kind, args, shape, batch):
    import torch

    module = {"conv": lambda: torch.nn.Conv2d(*args, 3, padding=1), "relu": torch.nn.ReLU,
              "pool": lambda: torch.nn.MaxPool2d(2), "flatten": torch.nn.Flatten,
              "dense": lambda: torch.nn.Linear(*args)}[kind]()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((batch, *shape), dtype=np.float32)).requires_grad_(True)
    dout = torch.ones_like(module(x))

    def run():
        x.grad = None
        out = module(x)
        out.backward(dout)
        return x.grad
    return run


def _worker(framework: str, threads: int, batch: int, conn) -> None:
    if framework == "torch":
        import torch

        torch.set_num_threads(threads)
        make = _torch_runner
    else:
        make = _cnnlab_runner
    runners = [make(kind, args, shape, batch) for _, kind, args, shape in LAYERS]
    conn.send("ready")
    while True:
        index = conn.recv()
        if index is None:
            return
        t = time.perf_counter()
        keep = runners[index]()  # keep the result alive, as a training loop does
        conn.send(time.perf_counter() - t)
        del keep


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--gap", type=float, default=0.25,
                        help="seconds of pause before each timing, so the other worker's threads stop spinning")
    args = parser.parse_args(argv)

    ctx = mp.get_context("spawn")
    workers = {}
    for framework in ("cnnlab", "torch"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(framework, args.threads, args.batch, child), daemon=True)
        proc.start()
        workers[framework] = (proc, parent)
    for _, conn in workers.values():
        conn.recv()

    import torch

    print(f"cnnlab vs PyTorch {torch.__version__}: forward+backward per layer, batch {args.batch}, float32, "
          f"{args.threads} threads, one worker process each, median of {args.repeats}")
    print(f"{'layer':<24}{'cnnlab ms':>11}{'torch ms':>11}{'ratio':>8}")
    totals = {"cnnlab": 0.0, "torch": 0.0}
    for index, (name, *_rest) in enumerate(LAYERS):
        times = {"cnnlab": [], "torch": []}
        for i in range(args.repeats + 2):  # interleaved; the first two rounds warm up
            for framework, (_, conn) in workers.items():
                time.sleep(args.gap)
                conn.send(index)
                elapsed = conn.recv()
                if i >= 2:
                    times[framework].append(elapsed)
        ma, mb = statistics.median(times["cnnlab"]), statistics.median(times["torch"])
        totals["cnnlab"] += ma
        totals["torch"] += mb
        print(f"{name:<24}{ma * 1e3:>11.3f}{mb * 1e3:>11.3f}{ma / mb:>8.2f}")
    ta, tb = totals["cnnlab"], totals["torch"]
    print(f"{'total':<24}{ta * 1e3:>11.3f}{tb * 1e3:>11.3f}{ta / tb:>8.2f}")
    print(f"load average during the run: {os.getloadavg()[0]:.2f}")
    for proc, conn in workers.values():
        conn.send(None)
        proc.join()


if __name__ == "__main__":
    main()
