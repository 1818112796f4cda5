"""The slow, readable loop versions of convolution and pooling: the test oracles.

This is the tutorials' code, done right: one output value at a time, exactly as the formula
reads. Same signatures and caches as the fast ops in ``cnnlab.ops.conv`` / ``cnnlab.ops.pool``,
so any forward can be paired with any backward (``cnnlab.engines``' ``"naive"`` engine).

:func:`conv2d_dx_flipped_kernel` is the flipped-kernel rule as code: for stride 1, the input
gradient is the *full* correlation of ``dout`` with the kernel rotated by 180 degrees. Use them on
small inputs only: they run a Python loop per output value.

Example:
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 2, 2))
    >>> out, cache = conv2d_forward_naive(x, w, None, stride=2)
    >>> out[0, 0]                              # sums of the four 2x2 blocks
    array([[10., 18.],
           [42., 50.]])
    >>> out, cache = maxpool2d_forward_naive(x, 2)
    >>> out[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
"""
from __future__ import annotations

import numpy as np

from cnnlab.ops.conv import ConvCache, prepare_conv2d
from cnnlab.ops.conv import check_dout as _check_conv_dout
from cnnlab.ops.pool import PoolCache, pool_out_shape, prepare_pool2d
from cnnlab.ops.pool import check_dout as _check_pool_dout

__all__ = ["conv2d_forward_naive", "conv2d_backward_naive", "conv2d_dx_flipped_kernel", "maxpool2d_forward_naive", "maxpool2d_backward_naive",
           "avgpool2d_forward_naive", "avgpool2d_backward_naive"]


def _pad(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)  # (N, C, H+2ph, W+2pw)


# ----- convolution ---------------------------------------------------------------------------
def conv2d_forward_naive(x, w, b, stride=(1, 1), padding=(0, 0)):
    """Convolution, one output value at a time.

    ``out[n, f, oh, ow] = sum(x_pad[n, :, oh*sh : oh*sh+KH, ow*sw : ow*sw+KW] * w[f]) + b[f]``

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). b: (F,) or None. out: (N, F, H_out, W_out).
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    KH, KW = w.shape[2:]
    sh, sw = stride
    xp = _pad(x, padding)  # (N, C, Hp, Wp)
    out = np.zeros(out_shape, dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for oh in range(H_out):
                for ow in range(W_out):
                    patch = xp[n, :, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW]  # (C, KH, KW)
                    out[n, f, oh, ow] = np.sum(patch * w[f]) + (b[f] if b is not None else 0)
    return out, ConvCache(x, w, b, stride, padding, "naive")


def conv2d_backward_naive(dout, cache: ConvCache):
    """Backward of the convolution, one output value at a time.

    Each output value ``out[n, f, oh, ow]`` came from one patch and one filter, so its
    gradient flows back to both: ``dw[f] += patch * dout[n, f, oh, ow]`` and
    ``dx_pad[n, :, patch] += w[f] * dout[n, f, oh, ow]``; ``db[f]`` sums ``dout[:, f]``.

    Shape:
        dout: (N, F, H_out, W_out). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,) or None.
    """
    x, w, b, (sh, sw), (ph, pw) = cache.x, cache.w, cache.b, cache.stride, cache.padding
    _check_conv_dout(dout, cache, prepare_conv2d(x, w, b, cache.stride, cache.padding)[2], "conv2d_backward")
    N, F, H_out, W_out = dout.shape
    KH, KW = w.shape[2:]
    xp = _pad(x, (ph, pw))  # (N, C, Hp, Wp)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    for n in range(N):
        for f in range(F):
            for oh in range(H_out):
                for ow in range(W_out):
                    g = dout[n, f, oh, ow]
                    rows, cols = slice(oh * sh, oh * sh + KH), slice(ow * sw, ow * sw + KW)
                    dw[f] += xp[n, :, rows, cols] * g
                    dxp[n, :, rows, cols] += w[f] * g
    db = dout.sum(axis=(0, 2, 3)) if b is not None else None
    dx = dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]].copy()  # (N, C, H, W)
    return dx, dw, db


def conv2d_dx_flipped_kernel(dout, w, padding=(0, 0)):
    """d(loss)/dx of a stride-1 convolution by the flipped-kernel rule, one value at a time.

    Input pixel ``x[n, c, r, s]`` feeds ``out[n, f, r + ph - i, s + pw - j]`` through
    ``w[f, c, i, j]``, so

        dx[n, c] = sum_f full_correlation(dout[n, f], rot180(w[f, c]))

    "full": ``dout`` padded by ``KH - 1 - ph`` rows and ``KW - 1 - pw`` columns of zeros on each
    side, so that every output value that saw a pixel is counted; "rot180": ``w[:, :, ::-1, ::-1]``.
    It is itself a stride-1 convolution, with the kernel flipped and its channel axes swapped.

    Args:
        dout: upstream gradient. w: the forward's weights. padding: the forward's (ph, pw),
            at most (KH - 1, KW - 1).

    Shape:
        dout: (N, F, H_out, W_out). w: (F, C, KH, KW). dx: (N, C, H_out + KH - 1 - 2*ph, ...) = (N, C, H, W).
    """
    N, F, H_out, W_out = dout.shape
    _, C, KH, KW = w.shape
    ph, pw = padding
    d = _pad(dout, (KH - 1 - ph, KW - 1 - pw))  # (N, F, H_out + 2*(KH-1-ph), ...): the "full" padding
    w_rot = w[:, :, ::-1, ::-1]  # (F, C, KH, KW), each kernel rotated 180 degrees
    H, W = H_out + KH - 1 - 2 * ph, W_out + KW - 1 - 2 * pw
    dx = np.zeros((N, C, H, W), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for r in range(H):
                for s in range(W):
                    dx[n, c, r, s] = np.sum(d[n, :, r:r + KH, s:s + KW] * w_rot[:, c])
    return dx


# ----- max pooling ---------------------------------------------------------------------------
def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Max pooling, one window at a time; records where each window's first maximum is.

    ``np.argmax`` of the flattened window returns the first maximum in row-major order,
    which is PyTorch's rule for ties.

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out).
    """
    (KH, KW), (sh, sw), padding, out_shape = prepare_pool2d(x, kernel_size, stride, padding, "maxpool2d")
    N, C, H_out, W_out = out_shape
    xp = _pad(x, padding, -np.inf)  # (N, C, Hp, Wp): -inf is never the maximum
    out = np.zeros(out_shape, dtype=x.dtype)
    argmax = np.zeros(out_shape, dtype=np.intp)
    for n in range(N):
        for c in range(C):
            for oh in range(H_out):
                for ow in range(W_out):
                    window = xp[n, c, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW]  # (KH, KW)
                    t = int(np.argmax(window))  # first maximum, row-major
                    argmax[n, c, oh, ow] = t
                    out[n, c, oh, ow] = window.flat[t]
    return out, PoolCache(x.shape, x.dtype, (KH, KW), (sh, sw), padding, "naive", argmax)


def maxpool2d_backward_naive(dout, cache: PoolCache):
    """Each window sends its whole gradient to its first maximum; overlapping windows add up.

    Shape:
        dout: (N, C, H_out, W_out). dx: (N, C, H, W).
    """
    N, C, H, W = cache.x_shape
    (KH, KW), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    _check_pool_dout(dout, cache, pool_out_shape(cache), "maxpool2d_backward")
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    i, j = divmod(int(cache.argmax[n, c, oh, ow]), KW)
                    dxp[n, c, oh * sh + i, ow * sw + j] += dout[n, c, oh, ow]
    return dxp[:, :, ph:ph + H, pw:pw + W].copy()  # (N, C, H, W)


# ----- average pooling -------------------------------------------------------------------------
def avgpool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Average pooling, one window at a time (zero padding counted: divide by KH*KW).

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out).
    """
    (KH, KW), (sh, sw), padding, out_shape = prepare_pool2d(x, kernel_size, stride, padding, "avgpool2d")
    N, C, H_out, W_out = out_shape
    xp = _pad(x, padding)  # (N, C, Hp, Wp)
    out = np.zeros(out_shape, dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(H_out):
                for ow in range(W_out):
                    out[n, c, oh, ow] = np.sum(xp[n, c, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW]) / (KH * KW)
    return out, PoolCache(x.shape, x.dtype, (KH, KW), (sh, sw), padding, "naive", None)


def avgpool2d_backward_naive(dout, cache: PoolCache):
    """Each window spreads ``dout / (KH*KW)`` evenly over its pixels; overlaps add up.

    Shape:
        dout: (N, C, H_out, W_out). dx: (N, C, H, W).
    """
    _check_pool_dout(dout, cache, pool_out_shape(cache), "avgpool2d_backward")
    N, C, H, W = cache.x_shape
    (KH, KW), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dout.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    dxp[n, c, oh * sh:oh * sh + KH, ow * sw:ow * sw + KW] += dout[n, c, oh, ow] / (KH * KW)
    return dxp[:, :, ph:ph + H, pw:pw + W].copy()  # (N, C, H, W)
