"""``cnnlab warmup``: compile the Numba kernels once, ahead of the first run.

On a cold Numba cache the first training batch waits ~20 s while the kernels compile; inside
a progress bar that shows as a frozen bar with an absurd ETA. ``cnnlab train`` and ``cnnlab
demo`` call :func:`ensure_warm` before any bar starts, so the compile happens once, announced,
outside the bar's rate and ETA. The cache detection and timing live in ``cnnlab.backend``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["add_commands", "cmd_warmup", "ensure_warm", "workload"]

#: the zoo models trained by ``cnnlab train`` (every MNIST code path: fused conv, plain conv,
#: max and average pooling, batch normalization, dropout)
WARMUP_MODELS = ("simple_cnn", "bn_cnn", "lenet5", "keras_tutorial_cnn")


def workload() -> None:
    """One training step of four images, one prediction and one unfused forward/backward for each model in ``WARMUP_MODELS``:
    the same functions, dtypes and layouts as a real run, so the same kernels compile."""
    from cnnlab.training import fit, predict
    from cnnlab.zoo import get_model

    rng = np.random.default_rng(0)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)  # (N, 1, 28, 28)
    y = np.arange(4, dtype=np.int64)
    for name in WARMUP_MODELS:
        model = get_model(name, seed=0)
        model.compile("sgd", lr=1e-3)
        fit(model, x, y, epochs=1, batch_size=4, verbose=0, seed=0, doctor=False)  # fused training passes
        predict(model, x)
        out = model.forward(x, training=True)  # the unfused passes the lab uses (saliency: d/d input)
        model.backward(np.ones_like(out))


def ensure_warm(say=print) -> bool:
    """Warm the kernels up when some have no compiled code on disk; returns whether it did.
    Call before any progress bar starts."""
    from cnnlab import backend

    if not backend.cold_kernels():
        return False
    backend.warmup(workload, say=say)
    return True


WARMUP_EPILOG = """\
The first run on a machine compiles cnnlab's fast Numba kernels (~20 s, on 2 cores); the
machine code is cached on disk (beside the package, or in NUMBA_CACHE_DIR), so later runs
load it in under a second. `cnnlab train` and `cnnlab demo` do this for you when needed;
run it ahead to keep the first run quick.

examples:
  cnnlab warmup
"""


def add_commands(sub) -> None:
    import argparse

    p = sub.add_parser("warmup", help="compile the fast kernels once (cached on disk)",
                       description="Compile (or load from the disk cache) every Numba kernel cnnlab uses.",
                       epilog=WARMUP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=cmd_warmup)


def cmd_warmup(args) -> int:
    from cnnlab import backend

    backend.warmup(workload)
    return 0
