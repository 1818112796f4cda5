"""Warm-up: compile the Numba kernels once, ahead of the first run (``cnnlab warmup``).

On a cold Numba cache the first training batch waits about a minute while the kernels compile; inside
a progress bar that shows as a frozen bar with an absurd ETA. ``cnnlab train`` and ``cnnlab
demo`` call :func:`ensure_warm` before any bar starts, so the compile happens once, announced,
outside the bar's rate and ETA. The cache detection and timing live in ``cnnlab.engines.runtime``; the command is
``cnnlab.cli.warmup``.
"""
from __future__ import annotations

import numpy as np

from cnnlab.engines import (conv2d_backward, conv2d_forward, conv2d_relu_maxpool2d_backward,
                            conv2d_relu_maxpool2d_forward, runtime)
from cnnlab.models.zoo import get_model
from cnnlab.training.inference import predict
from cnnlab.training.loop import fit
from cnnlab.training.optim import get_optimizer

__all__ = ["WARMUP_MODELS", "ensure_warm", "workload"]

#: the zoo models trained by ``cnnlab train`` (every MNIST code path: fused conv, plain conv,
#: max and average pooling, batch normalization, dropout)
WARMUP_MODELS = ("simple_cnn", "bn_cnn", "lenet5", "keras_tutorial_cnn")


def workload() -> None:
    """One training step of four images, one prediction and one unfused forward/backward for each model in ``WARMUP_MODELS``
    (and an Adam step on a large weight, and a 64-channel convolution): the same functions, dtypes
    and layouts as a real run, so every kernel compiles."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 1, 28, 28), dtype=np.float32)  # (N, 1, 28, 28)
    y = np.arange(4, dtype=np.int64)
    for name in WARMUP_MODELS:
        model = get_model(name, seed=0)
        model.compile("adam" if name == "bn_cnn" else "sgd", lr=1e-3)  # both optimizers' compiled updates
        fit(model, x, y, epochs=1, batch_size=4, verbose=0, seed=0, doctor=False)  # fused training passes
        predict(model, x)
        out = model.forward(x, training=True)  # the unfused passes the lab uses (saliency: d/d input)
        model.backward(np.ones_like(out))
        if name == "simple_cnn":  # Adam on its 401,408-value dense weight: the all-threads update
            opt = get_optimizer("adam", lr=1e-3)
            opt.set_parameters(model.parameters())
            opt.step()
    _wide_conv_workload(rng)


def _wide_conv_workload(rng) -> None:
    """A 3x3 convolution with 64 input channels (an RGB network's middle layers): Winograd's
    transforms, plain and fused with ReLU + max pooling, forward and backward."""
    x = rng.standard_normal((2, 64, 4, 4), dtype=np.float32)  # (N, C, H, W)
    w = rng.standard_normal((2, 64, 3, 3), dtype=np.float32)  # (F, C, 3, 3)
    b = np.zeros(2, dtype=np.float32)
    out, cache = conv2d_forward(x, w, b, 1, 1)
    conv2d_backward(np.ones_like(out), cache)
    pooled, fused = conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, 2)
    conv2d_relu_maxpool2d_backward(np.ones_like(pooled), fused)


def ensure_warm(say=print) -> bool:
    """Warm the kernels up when some have no compiled code on disk; returns whether it did.
    Call before any progress bar starts."""
    if not runtime.cold_kernels():
        return False
    runtime.warmup(workload, say=say)
    return True
