"""Exercises on the other building blocks: ReLU, pooling, softmax cross-entropy, dense, batch norm.

Sources: 01 "From Pixels to Patterns" (building blocks, 'Gradient for Pooling') and
03 "CNNs Deep Dive" (the layer classes with backward).
"""
from __future__ import annotations

import numpy as np

from cnnlab.exercises._core import Case, Exercise, distinct, header, register, rng
from cnnlab.ops.batchnorm import batchnorm_backward as _bn_bwd, batchnorm_forward as _bn_fwd
from cnnlab.ops.loss import softmax_cross_entropy as _sce
from cnnlab.ops.reference import (avgpool2d_backward_naive, avgpool2d_forward_naive, maxpool2d_backward_naive,
                                  maxpool2d_forward_naive)

POOL_4x4 = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float64)[None, None]


# ----- ReLU -------------------------------------------------------------------------------------
def _relu_cases():
    r = rng(5)
    x1 = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    x2 = r.standard_normal((2, 3, 4, 5))
    x3 = r.standard_normal((3, 4)).astype(np.float32)
    x3[0, :2] = 0  # exact zeros: the gradient there is 0 by convention (as PyTorch)
    out = [Case("five values around 0", "relu_forward", (x1,), np.maximum(x1, 0)),
           Case("a (2, 3, 4, 5) batch", "relu_forward", (x2,), np.maximum(x2, 0)),
           Case("float32 in -> float32 out", "relu_forward", (x3,), np.maximum(x3, 0))]
    for label, x in [("five values around 0", x1), ("a (2, 3, 4, 5) batch", x2), ("float32 with exact zeros", x3)]:
        dout = r.standard_normal(x.shape).astype(x.dtype) if x is not x1 else np.array([[1.0, 2.0, 3.0, 4.0, 5.0]])
        out.append(Case("backward: " + label, "relu_backward", (dout, x), dout * (x > 0), variants={
            "mask_only": (x > 0).astype(x.dtype),
            "mask_from_dout": dout * (dout > 0),
            "ge_zero": dout * (x >= 0)}))
    return out


register(Exercise(
    "relu", "ReLU forward and backward", "01 From Pixels to Patterns, '2. Activation Function (ReLU)'; 03 ReLU class",
    ("relu_forward", "relu_backward"),
    header("relu", "ReLU forward and backward", "01 '2. Activation Function (ReLU)'") + '''
import numpy as np


def relu_forward(x):
    """out = max(0, x), element-wise.  Shape: x, out: any shape (same), dtype of x."""
    # TODO
    raise NotImplementedError("relu_forward")


def relu_backward(dout, x):
    """dx = dout where the forward input x was positive, else 0 (also 0 at x == 0).

    Shape: dout, x, dx: the same shape.
    Hint (tutorial): the gradient passes through where the unit was active.
    """
    # TODO
    raise NotImplementedError("relu_backward")
''',
    _relu_cases,
    {"mask_only": "You return the mask (x > 0) alone: multiply it by dout, the gradient arriving from above.",
     "mask_from_dout": "The mask must come from the forward INPUT x, not from dout.",
     "ge_zero": "At x == 0 the gradient is 0 by convention (x > 0, not x >= 0), as PyTorch."},
))


# ----- max pooling --------------------------------------------------------------------------------
def _pool_windows(dout, x_shape, k, pos_stride, pick):
    """Scatter dout into windows placed every ``pos_stride`` pixels; ``pick(window, value)`` gives
    the (KH, KW) contribution. Used to build the wrong variants."""
    dx = np.zeros(x_shape)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    sl = (n, c, slice(i * pos_stride, i * pos_stride + k), slice(j * pos_stride, j * pos_stride + k))
                    target = dx[sl]
                    if target.size == 0:  # a misplaced window past the border
                        continue
                    target += pick(sl, dout[n, c, i, j])[:target.shape[0], :target.shape[1]]
    return dx


def _maxpool_variants(dout, x, k, s):
    def ties(sl, g):
        win = x[sl]
        return (win == win.max()) * g

    def first_max(sl, g):
        win = x[sl]
        m = np.zeros(win.shape)
        m.flat[int(np.argmax(win))] = g
        return m

    overwrite = np.zeros(x.shape)
    N, C, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    win = x[n, c, i * s:i * s + k, j * s:j * s + k]
                    m = np.zeros(win.shape)
                    m.flat[int(np.argmax(win))] = 1
                    region = overwrite[n, c, i * s:i * s + k, j * s:j * s + k]
                    region[m == 1] = dout[n, c, i, j]  # '=' where it must be '+='
    return {"all_ties": _pool_windows(dout, x.shape, k, s, ties),
            "stride_ignored": _pool_windows(dout, x.shape, k, k, first_max),
            "overwrite": overwrite}


def _maxpool_cases():
    r = rng(6)
    fwd, bwd = [], []
    ties = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 0.0, 5.0, 5.0], [3.0, 3.0, 5.0, 5.0]]]])
    specs = [("01's 4x4 example -> [[6, 8], [9, 11]] (the tutorial prints [[3, 4], [9, 11]]: erratum)", POOL_4x4, 2, 2),
             ("ties inside windows", ties, 2, 2),
             ("overlapping windows: 3x3, stride 2", distinct((1, 1, 5, 5), 1), 3, 2),
             ("gaps between windows: 2x2, stride 3", distinct((2, 1, 7, 7), 2), 2, 3),
             ("overlapping windows with ties: 2x2, stride 1", np.round(r.standard_normal((1, 2, 5, 5))), 2, 1),
             ("non-square 6x8, batch 2, 3 channels", distinct((2, 3, 6, 8), 3), 2, 2),
             ("float32, 3x3 stride 1", distinct((1, 2, 5, 6), 4, np.float32), 3, 1)]
    for label, x, k, s in specs:
        out, cache = maxpool2d_forward_naive(x, k, s)
        fwd.append(Case(label, "maxpool_forward", (x, k, s), out, variants={
            "forward_stride_ignored": maxpool2d_forward_naive(x, k, k)[0]}))
        dout = np.arange(1.0, out.size + 1).reshape(out.shape).astype(x.dtype)  # distinct, readable
        variants = {key: v.astype(x.dtype) for key, v in _maxpool_variants(dout, x, k, s).items()}
        bwd.append(Case("backward: " + label, "maxpool_backward", (dout, x, k, s),
                        maxpool2d_backward_naive(dout, cache), variants=variants))
    return fwd + bwd


register(Exercise(
    "maxpool", "Max pooling forward and backward, any window and stride",
    "01 From Pixels to Patterns, '3. Pooling Layer' and 'Gradient for Pooling'; 03 max_pool2d",
    ("maxpool_forward", "maxpool_backward"),
    header("maxpool", "Max pooling forward and backward", "01 '3. Pooling Layer', 'Gradient for Pooling'") + '''
import numpy as np


def maxpool_forward(x, pool_size=2, stride=2):
    """The maximum of each pool_size x pool_size window, windows every ``stride`` pixels.

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out), H_out = (H - pool_size) // stride + 1; dtype of x.
    Hint (tutorial): each 2x2 block of a 4x4 map becomes its largest value.
    """
    # TODO
    raise NotImplementedError("maxpool_forward")


def maxpool_backward(dout, x, pool_size=2, stride=2):
    """Route each dout value to the position of its window's maximum in x.

    Rules: when several values in a window tie for the maximum, only the FIRST one in
    row-major order (np.argmax of the flattened window) gets the gradient, as PyTorch does.
    Windows may overlap (stride < pool_size): their contributions add up.

    Shape: dout: (N, C, H_out, W_out). x, dx: (N, C, H, W).
    Hint (tutorial): only the maximum affected the output, so only it gets gradient.
    """
    # TODO
    raise NotImplementedError("maxpool_backward")
''',
    _maxpool_cases,
    {"all_ties": "Every tied maximum got the gradient: send it to ONE position only, the first maximum "
                 "(np.argmax of the flattened window), or the gradient is counted twice.",
     "stride_ignored": "Your backward places windows every pool_size pixels: use `stride` (it works only "
                       "when stride == pool_size, which is why weaker graders miss it).",
     "overwrite": "Overlapping windows overwrite each other's gradient: accumulate with += instead of =.",
     "forward_stride_ignored": "Your forward moves windows by pool_size; move them by `stride`."},
))


# ----- average pooling ----------------------------------------------------------------------------
def _avgpool_cases():
    fwd, bwd = [], []
    specs = [("01's 4x4 map, 2x2 stride 2", POOL_4x4, 2, 2),
             ("overlapping 3x3 windows, stride 1", distinct((1, 2, 5, 5), 5), 3, 1),
             ("gaps: 2x2, stride 3", distinct((2, 1, 7, 8), 6), 2, 3),
             ("float32, batch 3", distinct((3, 2, 4, 6), 7, np.float32), 2, 2)]
    for label, x, k, s in specs:
        out, cache = avgpool2d_forward_naive(x, k, s)
        fwd.append(Case(label, "avgpool_forward", (x, k, s), out, variants={"sum": out * (k * k)}))
        dout = np.arange(1.0, out.size + 1).reshape(out.shape).astype(x.dtype)
        dx = avgpool2d_backward_naive(dout, cache)
        ones = lambda sl, g: np.full((k, k), g)  # noqa: E731
        bwd.append(Case("backward: " + label, "avgpool_backward", (dout, x, k, s), dx, variants={
            "no_divide": dx * (k * k),
            "stride_ignored": (_pool_windows(dout, x.shape, k, k, ones) / (k * k)).astype(x.dtype)}))
    return fwd + bwd


register(Exercise(
    "avgpool", "Average pooling forward and backward",
    "01 From Pixels to Patterns, '3. Pooling Layer' (Average Pooling); 03 avg_pool2d",
    ("avgpool_forward", "avgpool_backward"),
    header("avgpool", "Average pooling forward and backward", "01 '3. Pooling Layer'") + '''
import numpy as np


def avgpool_forward(x, pool_size=2, stride=2):
    """The mean of each pool_size x pool_size window, windows every ``stride`` pixels.

    Shape: x: (N, C, H, W). out: (N, C, (H - pool_size) // stride + 1, ...); dtype of x.
    """
    # TODO
    raise NotImplementedError("avgpool_forward")


def avgpool_backward(dout, x, pool_size=2, stride=2):
    """Each window shares its dout value equally among its pool_size**2 inputs; overlaps add.

    Shape: dout: (N, C, H_out, W_out). x, dx: (N, C, H, W).
    """
    # TODO
    raise NotImplementedError("avgpool_backward")
''',
    _avgpool_cases,
    {"sum": "Your forward sums the window: divide by the number of values in it (pool_size**2).",
     "no_divide": "Each input gets dout / pool_size**2 (the mean's derivative), not dout.",
     "stride_ignored": "Your backward places windows every pool_size pixels: use `stride`."},
))


# ----- softmax cross-entropy ----------------------------------------------------------------------
def _sce_cases():
    r = rng(8)
    specs = [("2 samples, 3 classes, hand-sized", np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]), np.array([2, 0])),
             ("batch 1", r.standard_normal((1, 4)), np.array([3])),
             ("random 8 x 10", r.standard_normal((8, 10)), r.integers(0, 10, 8)),
             ("large logits (1000s): needs the max shift", r.standard_normal((4, 5)) * 50 + 1000, np.array([0, 1, 2, 3])),
             ("float32", r.standard_normal((5, 3)).astype(np.float32), np.array([0, 1, 2, 1, 0]))]
    out = []
    for label, z, y in specs:
        loss, dz = _sce(z, y)
        n = z.shape[0]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out.append(Case(label, "softmax_cross_entropy", (z, y), (loss, dz), names=("loss", "dlogits"), variants={
            "grad_not_divided": (loss, dz * n),
            "loss_summed": (loss * n, dz),
            "no_minus_one": (loss, (p / n).astype(z.dtype))}))
    return out


register(Exercise(
    "softmax_ce", "Softmax cross-entropy: the loss and its gradient",
    "01 From Pixels to Patterns, 'Final Step' (softmax and cross-entropy); 03 softmax / cross-entropy",
    ("softmax_cross_entropy",),
    header("softmax_ce", "Softmax cross-entropy forward and backward", "01 'Final Step'") + '''
import numpy as np


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and d(loss)/d(logits).

    Rules: p = softmax(logits) row by row; loss = mean over n of -log p[n, labels[n]];
    dlogits = (p - one_hot(labels)) / N. Must stay finite for logits in the thousands.

    Shape: logits, dlogits: (N, K), dtype of logits. labels: (N,) ints. loss: a float.
    Returns: (loss, dlogits)
    Hint (tutorial): softmax turns scores into probabilities that sum to 1.
    """
    # TODO
    raise NotImplementedError("softmax_cross_entropy")
''',
    _sce_cases,
    {"grad_not_divided": "dlogits is N times too large: the loss is a MEAN over the batch, so divide by N.",
     "loss_summed": "Your loss is a sum over the batch: take the mean.",
     "no_minus_one": "dlogits is softmax / N: subtract 1 at each sample's true class first.",
     "non_finite": "Your output has inf or nan on large logits: subtract each row's maximum before exp "
                   "(softmax(z) == softmax(z - max(z))), and compute log-probabilities, not log(p)."},
))


# ----- dense --------------------------------------------------------------------------------------
def _dense_cases():
    r = rng(9)
    out = []
    specs = [("hand-sized: 1 x 2 input, 2 x 3 weights", np.array([[1.0, 2.0]]), np.array([[1.0, 0, -1], [2, 1, 0]]),
              np.array([0.5, 0, -0.5])),
             ("batch 4, 5 -> 3", r.standard_normal((4, 5)), r.standard_normal((5, 3)), r.standard_normal(3)),
             ("float32, batch 3, 6 -> 2", r.standard_normal((3, 6)).astype(np.float32),
              r.standard_normal((6, 2)).astype(np.float32), r.standard_normal(2).astype(np.float32))]
    for label, x, w, b in specs:
        out.append(Case(label, "dense_forward", (x, w, b), x @ w + b, variants={"no_bias": x @ w}))
    for label, x, w, b in specs:
        dout = r.standard_normal((x.shape[0], w.shape[1])).astype(x.dtype)
        dx, dw, db = dout @ w.T, x.T @ dout, dout.sum(axis=0)
        v = {"db_not_summed": (dx, dw, dout[0]), "dw_mean": (dx, dw / x.shape[0], db),
             "db_mean": (dx, dw, dout.mean(axis=0))}
        if x.shape[0] == 1:
            v = {}
        out.append(Case("backward: " + label, "dense_backward", (dout, x, w), (dx, dw, db),
                        variants=v, names=("dx", "dw", "db")))
    return out


register(Exercise(
    "dense", "Dense (fully connected) forward and backward",
    "01 From Pixels to Patterns, '6. Fully Connected Layer'; 03 the Dense layer class",
    ("dense_forward", "dense_backward"),
    header("dense", "Dense forward and backward", "01 '6. Fully Connected Layer'") + '''
import numpy as np


def dense_forward(x, w, b):
    """out = x @ w + b.  Shape: x (N, D_in), w (D_in, D_out), b (D_out,), out (N, D_out)."""
    # TODO
    raise NotImplementedError("dense_forward")


def dense_backward(dout, x, w):
    """Gradients of out = x @ w + b.

    Shape: dout (N, D_out). Returns (dx, dw, db): dx (N, D_in), dw (D_in, D_out), db (D_out,).
    Hint (tutorial): match shapes: the only product giving (D_in, D_out) is x.T @ dout.
    """
    # TODO
    raise NotImplementedError("dense_backward")
''',
    _dense_cases,
    {"no_bias": "Add the bias b to every row.",
     "db_not_summed": "db is only the first sample's: sum dout over the batch axis.",
     "dw_mean": "dw is divided by N: the sum over the batch is the gradient (the loss already averages).",
     "db_mean": "db is averaged over the batch: sum it (the loss already averages)."},
))


# ----- batch norm ---------------------------------------------------------------------------------
def _bn_ref(x, gamma, beta, eps):
    d = x.shape[1]
    return _bn_fwd(x, gamma, beta, np.zeros(d, x.dtype), np.ones(d, x.dtype), training=True, eps=eps, axes=(0,))


def _bn_cases():
    r = rng(10)
    specs = [("4 samples, 2 features", np.array([[1.0, 2], [3, 6], [5, 4], [7, 0]]), np.array([1.0, 2]),
              np.array([0.0, 1]), 1e-5),
             ("large eps (0.5) shows where eps goes", r.standard_normal((6, 3)), r.standard_normal(3),
              r.standard_normal(3), 0.5),
             ("batch 16, 5 features, scaled inputs", r.standard_normal((16, 5)) * 3 + 2, r.standard_normal(5),
              r.standard_normal(5), 1e-5),
             ("float32", r.standard_normal((8, 4)).astype(np.float32), r.standard_normal(4).astype(np.float32),
              r.standard_normal(4).astype(np.float32), 1e-5)]
    fwd, bwd = [], []
    for label, x, g, b, eps in specs:
        out, _, _, cache = _bn_ref(x, g, b, eps)
        mu = x.mean(0)
        fwd.append(Case(label, "batchnorm_forward", (x, g, b, eps), out, variants={
            "unbiased_var": (x - mu) / np.sqrt(x.var(0, ddof=1) + eps) * g + b,
            "eps_outside": (x - mu) / (x.std(0) + eps) * g + b}))
        dout = r.standard_normal(x.shape).astype(x.dtype)
        dx, dg, db = _bn_bwd(dout, cache)
        inv = 1 / np.sqrt(x.var(0) + eps)
        bwd.append(Case("backward: " + label, "batchnorm_backward", (dout, x, g, eps), (dx, dg, db),
                        names=("dx", "dgamma", "dbeta"), variants={
                            "no_mean_terms": (dout * g * inv, dg, db),
                            "no_xhat_term": (g * inv * (dout - dout.mean(0)), dg, db)}))
    return fwd + bwd


register(Exercise(
    "batchnorm", "Batch normalization (training mode) forward and backward",
    "01 From Pixels to Patterns, '4. Batch Normalization'",
    ("batchnorm_forward", "batchnorm_backward"),
    header("batchnorm", "Batch norm forward and backward", "01 '4. Batch Normalization'") + '''
import numpy as np


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Normalize each feature over the batch, then scale and shift.

    Rule: mu = mean over the batch, var = mean((x - mu)**2) (biased: divide by N),
    xhat = (x - mu) / sqrt(var + eps), out = gamma * xhat + beta.
    Shape: x, out (N, D); gamma, beta (D,).
    """
    # TODO
    raise NotImplementedError("batchnorm_forward")


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    """Gradients of batchnorm_forward. mu and var depend on x too: their paths count.

    Shape: dout, x, dx (N, D). Returns (dx, dgamma, dbeta); dgamma, dbeta (D,).
    Hint (tutorial): batch norm keeps activations in a stable range; its backward has
    three paths into x (direct, through the mean, through the variance).
    """
    # TODO
    raise NotImplementedError("batchnorm_backward")
''',
    _bn_cases,
    {"unbiased_var": "Normalize with the biased variance (divide by N, np.var's default), as PyTorch in training.",
     "eps_outside": "eps goes inside the square root: sqrt(var + eps), not std + eps.",
     "no_mean_terms": "dx misses the paths through the batch mean and variance: "
                      "dx = gamma/std * (dout - mean(dout) - xhat * mean(dout * xhat)).",
     "no_xhat_term": "dx misses the path through the variance: subtract xhat * mean(dout * xhat) too."},
))
