"""Forward+backward time of every layer of the tutorial MNIST model, cnnlab beside PyTorch.

Both run in this one process, float32, with the same thread count, interleaved (A B A B ...)
so machine noise hits both alike; prints medians and the cnnlab/PyTorch ratio per layer.

    python benchmarks/bench_layers.py [--batch 64] [--repeats 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _layers(batch: int):
    """(name, cnnlab layer, torch module, input shape) for each layer of simple_cnn."""
    import torch

    from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU

    def conv(cin, cout):
        ours = Conv2d(cin, cout, 3, padding=1, rng=0)
        theirs = torch.nn.Conv2d(cin, cout, 3, padding=1)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        return ours, theirs

    def dense(fin, fout):
        ours = Dense(fin, fout, rng=0)
        theirs = torch.nn.Linear(fin, fout)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight.data.T.copy()))
        return ours, theirs

    return [
        ("conv1 1->32 3x3 @28", *conv(1, 32), (batch, 1, 28, 28)),
        ("relu1 @32x28x28", ReLU(), torch.nn.ReLU(), (batch, 32, 28, 28)),
        ("pool1 2x2 @32x28x28", MaxPool2d(2), torch.nn.MaxPool2d(2), (batch, 32, 28, 28)),
        ("conv2 32->64 3x3 @14", *conv(32, 64), (batch, 32, 14, 14)),
        ("relu2 @64x14x14", ReLU(), torch.nn.ReLU(), (batch, 64, 14, 14)),
        ("pool2 2x2 @64x14x14", MaxPool2d(2), torch.nn.MaxPool2d(2), (batch, 64, 14, 14)),
        ("flatten", Flatten(), torch.nn.Flatten(), (batch, 64, 7, 7)),
        ("dense 3136->128", *dense(3136, 128), (batch, 3136)),
        ("relu3 @128", ReLU(), torch.nn.ReLU(), (batch, 128)),
        ("dense 128->10", *dense(128, 10), (batch, 128)),
    ]


def _time_cnnlab(layer, x, dout):
    t = time.perf_counter()
    layer.forward(x, training=True)
    layer.backward(dout)
    return time.perf_counter() - t


def _time_torch(module, xt, doutt):
    t = time.perf_counter()
    out = module(xt)
    out.backward(doutt)
    return time.perf_counter() - t


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"cnnlab vs PyTorch {torch.__version__}: forward+backward per layer, batch {args.batch}, float32, "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'layer':<24}{'cnnlab ms':>11}{'torch ms':>11}{'ratio':>8}")
    total_ours = total_theirs = 0.0
    for name, ours, theirs, shape in _layers(args.batch):
        x = rng.standard_normal(shape, dtype=np.float32)
        out_shape = (args.batch, *ours.output_shape(shape[1:]))
        dout = rng.standard_normal(out_shape, dtype=np.float32)
        xt = torch.from_numpy(x).requires_grad_(True)
        doutt = torch.from_numpy(dout)
        a, b = [], []
        for i in range(args.repeats + 2):  # interleaved; the first two rounds warm up
            ta, tb = _time_cnnlab(ours, x, dout), _time_torch(theirs, xt, doutt)
            if i >= 2:
                a.append(ta)
                b.append(tb)
        ma, mb = statistics.median(a), statistics.median(b)
        total_ours += ma
        total_theirs += mb
        print(f"{name:<24}{ma * 1e3:>11.3f}{mb * 1e3:>11.3f}{ma / mb:>8.2f}")
    print(f"{'total':<24}{total_ours * 1e3:>11.3f}{total_theirs * 1e3:>11.3f}{total_ours / total_theirs:>8.2f}")


if __name__ == "__main__":
    main()
