"""The implementation ladder: cnnlab alone, each engine timed on small conv and pool layers."""
from __future__ import annotations

import statistics
import time

import numpy as np

from cnnlab.engines import runtime as backend
from cnnlab.layers import Conv2d, MaxPool2d

__all__ = ["LADDER", "run_ladder"]

#: (name, kind, settings, input shape with batch): small, so that the naive loops finish in seconds
LADDER = [
    ("conv 3->8 3x3 pad 1 @16x16", "conv", dict(cin=3, cout=8), (4, 3, 16, 16)),
    ("conv 8->16 3x3 pad 1 @16x16", "conv", dict(cin=8, cout=16), (4, 8, 16, 16)),
    ("maxpool 2x2 @8x16x16", "maxpool", {}, (4, 8, 16, 16)),
]


def run_ladder(impls=("naive", "im2col", "fast"), repeats: int = 3, log=None) -> list[tuple[str, str, float]]:
    """Forward + backward seconds of each ladder layer for each implementation (cnnlab only).

    ``fast`` is timed with each available backend (``fast (numpy)``, ``fast (numba)``).

    Returns:
        ``[(impl label, layer name, seconds), ...]`` (medians of ``repeats``).
    """
    out = []
    for impl in impls:
        labels = [(impl, None)]
        if impl == "fast":
            labels = [("fast (numpy)", "numpy")] + ([("fast (numba)", "numba")] if backend.HAVE_NUMBA else [])
        for label, engine in labels:
            for name, kind, s, shape in LADDER:
                rng = np.random.default_rng(0)
                layer = Conv2d(s["cin"], s["cout"], 3, padding=1, rng=0, impl=impl) if kind == "conv" \
                    else MaxPool2d(2, impl=impl)
                x = rng.standard_normal(shape, dtype=np.float32)
                with backend.backend(engine or backend.get_backend()):
                    dout = rng.standard_normal(layer.forward(x).shape, dtype=np.float32)

                    def step():
                        layer.forward(x, training=True)
                        return layer.backward(dout)
                    step()  # warm up (compiles Numba kernels on a first run)
                    times = []
                    for _ in range(repeats):
                        n, t0 = 0, time.perf_counter()
                        while n < 3 or time.perf_counter() - t0 < 0.2:
                            step()
                            n += 1
                        times.append((time.perf_counter() - t0) / n)
                out.append((label, name, statistics.median(times)))
                if log:
                    log(f"{label:>13}  {name}: {out[-1][2] * 1e3:.3f} ms")
    return out
