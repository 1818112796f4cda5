"""The challenge of 04 "Motivation for Convolutions": a 2-layer CNN from your own functions.

Your conv2d, ReLU and dense functions (the contracts of the conv2d_forward, conv2d_backward,
relu and dense exercises) are wrapped into cnnlab layers and plugged into a ``Sequential``
conv -> relu -> conv -> relu -> flatten -> fc. Graded: each of your layers and the whole
model against central differences in float64, then training on MNIST digits 0 and 1 resized
to 14x14 (the MNIST cnnlab ships) to >= 99% test accuracy within the time limit.
"""
from __future__ import annotations

import time

import numpy as np

from cnnlab.exercises._core import Case, Exercise, header, register
from cnnlab.layers import Conv2d, Dense, Flatten, ReLU
from cnnlab.models import Sequential
from cnnlab.testing import check_layer_gradients
from cnnlab.datasets import load_mnist

TRAIN_IMAGES = 2000   # a subset keeps the check to seconds with vectorized code
EPOCHS = 2
TARGET = 0.99
TIME_LIMIT = 240.0    # seconds for the training case
GRAD_TOL = 1e-6


def _wrap(m):
    """cnnlab layers whose maths is the learner's module ``m``."""

    class YourConv2d(Conv2d):
        def forward(self, x, *, training=False, requires_grad=None):
            out = np.asarray(m.conv2d_forward(x, self.weight.data, self.bias.data, self.stride[0], self.padding[0]))
            self._cache = x if self._keep(training, requires_grad) else None
            return out.astype(x.dtype, copy=False)

        def backward(self, dout, *, need_dx=True):
            x = self._require_cache()
            dx, dw, db = m.conv2d_backward(dout, x, self.weight.data, self.bias.data, self.stride[0], self.padding[0])
            self.weight.grad, self.bias.grad = np.asarray(dw, dout.dtype), np.asarray(db, dout.dtype)
            return np.asarray(dx, dout.dtype)

    class YourReLU(ReLU):
        def forward(self, x, *, training=False, requires_grad=None):
            self._cache = x if self._keep(training, requires_grad) else None
            return np.asarray(m.relu_forward(x)).astype(x.dtype, copy=False)

        def backward(self, dout):
            return np.asarray(m.relu_backward(dout, self._require_cache()), dout.dtype)

    class YourDense(Dense):
        def forward(self, x, *, training=False, requires_grad=None):
            self._cache = x if self._keep(training, requires_grad) else None
            return np.asarray(m.dense_forward(x, self.weight.data, self.bias.data)).astype(x.dtype, copy=False)

        def backward(self, dout):
            dx, dw, db = m.dense_backward(dout, self._require_cache(), self.weight.data)
            self.weight.grad, self.bias.grad = np.asarray(dw, dout.dtype), np.asarray(db, dout.dtype)
            return np.asarray(dx, dout.dtype)

    return YourConv2d, YourReLU, YourDense


def build_model(m, *, dtype=np.float32, seed=0, size=14):
    """conv(1->8, 3x3) -> relu -> conv(8->16, 3x3, stride 2) -> relu -> flatten -> fc(2)."""
    YourConv2d, YourReLU, YourDense = _wrap(m)
    h2 = ((size - 2) - 3) // 2 + 1
    return Sequential([YourConv2d(1, 8, 3, dtype=dtype, rng=seed), YourReLU(),
                       YourConv2d(8, 16, 3, stride=2, dtype=dtype, rng=seed + 1), YourReLU(), Flatten(),
                       YourDense(16 * h2 * h2, 2, dtype=dtype, rng=seed + 2)], input_shape=(1, size, size))


def _gradcheck(m):
    """Worst relative error of any layer's gradients, and of the whole model's input gradient."""
    model = build_model(m, dtype=np.float64, size=8)
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8))
    worst, where = 0.0, ""
    for i, layer in enumerate(model.layers):
        inp = x
        x = layer.forward(x)
        for name, err in check_layer_gradients(layer, inp).items():
            if not err <= worst:  # also catches nan
                worst, where = err, f"layer {i} ({type(layer).__name__}) d{name}"
    ok = worst <= GRAD_TOL
    return ok, f"worst relative gradient error {worst:.2e} at {where} (must be <= {GRAD_TOL:g})"


def mnist01_14x14(train_images=TRAIN_IMAGES):
    """MNIST digits 0 and 1, 2x2-averaged to 14x14, float32 in [0, 1]: (x_train, y_train), (x_test, y_test)."""
    def prep(x, y, limit=None):
        keep = np.flatnonzero(y <= 1)[:limit]
        x = x[keep].astype(np.float32) / 255  # (n, 28, 28)
        x = x.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4))  # (n, 14, 14)
        return x[:, None], y[keep].astype(np.int64)  # (n, 1, 14, 14)

    (xtr, ytr), (xte, yte) = load_mnist()
    return prep(xtr, ytr, train_images), prep(xte, yte)


def _train(m):
    (xtr, ytr), (xte, yte) = mnist01_14x14()
    model = build_model(m)
    model.compile("adam", lr=3e-3)
    start = time.perf_counter()
    model.fit(xtr, ytr, epochs=EPOCHS, batch_size=32, verbose=0, seed=0, doctor=False)
    seconds = time.perf_counter() - start
    _, acc = model.evaluate(xte, yte)
    ok = acc >= TARGET and seconds <= TIME_LIMIT
    return ok, (f"test accuracy {acc:.2%} on {len(yte)} test images after {EPOCHS} epochs on {len(ytr)} "
                f"training images in {seconds:.0f} s (need >= {TARGET:.0%} within {TIME_LIMIT:.0f} s)")


def _cases():
    return [Case("gradient check of your layers (float64, central differences)", "conv2d_backward", (),
                 None, call=_gradcheck),
            Case("train on MNIST 0 vs 1 at 14x14, test accuracy >= 99%", "conv2d_forward", (), None, call=_train)]


register(Exercise(
    "challenge", "Challenge: your own 2-layer CNN trained on MNIST 0 vs 1 at 14x14",
    "04 Motivation for Convolutions, Challenge Exercise",
    ("conv2d_forward", "conv2d_backward", "relu_forward", "relu_backward", "dense_forward", "dense_backward"),
    header("challenge", "Your own CNN: conv -> relu -> conv -> relu -> flatten -> fc", "04 Challenge Exercise") + '''
import numpy as np

# The grader wraps these six functions into cnnlab layers, builds
#   conv(1->8, 3x3) -> relu -> conv(8->16, 3x3, stride 2) -> relu -> flatten -> fc(2)
# checks every gradient, then trains it with Adam on MNIST 0 vs 1 at 14x14.
# Hint (tutorial): start with the forward passes, then add backpropagation; the
# conv2d_forward, conv2d_backward, relu and dense exercises grade each piece on its own.
# Loops over the batch are too slow here: loop over the KH*KW kernel offsets instead.


def conv2d_forward(x, w, b, stride=1, padding=0):
    """x (N, C, H, W), w (F, C, KH, KW), b (F,) -> (N, F, H_out, W_out); cross-correlation."""
    # TODO
    raise NotImplementedError("conv2d_forward")


def conv2d_backward(dout, x, w, b, stride=1, padding=0):
    """dout (N, F, H_out, W_out) -> (dx (N, C, H, W), dw (F, C, KH, KW), db (F,))."""
    # TODO
    raise NotImplementedError("conv2d_backward")


def relu_forward(x):
    """max(0, x), same shape and dtype."""
    # TODO
    raise NotImplementedError("relu_forward")


def relu_backward(dout, x):
    """dout where x > 0, else 0."""
    # TODO
    raise NotImplementedError("relu_backward")


def dense_forward(x, w, b):
    """x (N, D_in) @ w (D_in, D_out) + b (D_out,)."""
    # TODO
    raise NotImplementedError("dense_forward")


def dense_backward(dout, x, w):
    """dout (N, D_out) -> (dx (N, D_in), dw (D_in, D_out), db (D_out,))."""
    # TODO
    raise NotImplementedError("dense_backward")
''',
    _cases,
    {},
    timeout=300.0,
))
