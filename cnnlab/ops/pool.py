"""Max, average and global average pooling: forward and backward.

Windows of ``kernel_size`` slide by ``stride`` (default: the kernel, non-overlapping), with
``H_out = floor((H + 2*ph - KH) / sh) + 1`` (``cnnlab.ops.shapes.conv_output_size``).

Max pooling passes each window's largest value; its gradient goes to ONE input per window,
the *first* maximum in row-major order (PyTorch's rule for ties: with MNIST's many zero
pixels, ties are the rule, not the exception). Where windows overlap, the gradients of all
windows that picked a pixel add up. Padding pads with -inf (never selected), as PyTorch.

Average pooling follows PyTorch's defaults: zero padding counted in the divisor
(``count_include_pad=True``), so every window divides by KH*KW.

With NaN inputs the max-pool output is NaN as in PyTorch, but the gradient may go to a
different pixel of that window (the first maximum among the values before the NaN).

The NumPy code here loops over the KH*KW window offsets only, each step a whole-batch array
op: a reshape when the windows tile x exactly (stride == kernel, no padding, divisible
sizes: the usual 2x2 pool), strided views from ``sliding_window_view`` otherwise (the same
numbers). The loop version is in ``cnnlab.ops.reference``; the Numba engine's one compiled
pass per direction is in ``cnnlab.engines.numba_ops`` (``cnnlab.engines`` picks one).

Example:
    >>> x = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float32)
    >>> out, cache = maxpool2d_forward(x[None, None], 2)
    >>> out[0, 0]
    array([[ 6.,  8.],
           [ 9., 11.]], dtype=float32)
    >>> maxpool2d_backward(np.array([[[[2, 5], [3, 7]]]], dtype=np.float32), cache)[0, 0]
    array([[0., 0., 0., 0.],
           [0., 2., 0., 5.],
           [3., 0., 0., 0.],
           [0., 0., 7., 0.]], dtype=float32)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.ops.im2col import pad
from cnnlab.ops.shapes import Pair, conv_output_size, to_pair

__all__ = ["PoolCache", "maxpool2d_forward", "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward",
           "global_avgpool2d_forward", "global_avgpool2d_backward", "prepare_pool2d", "check_dout", "check_cache",
           "pool_out_shape", "tiles_exactly"]


class PoolCache(NamedTuple):
    """What the pooling backward passes need; the same fields for every implementation.

    Attributes:
        x_shape: (N, C, H, W) of the input.
        dtype: dtype of the input (and of the output; dout must match).
        kernel_size, stride, padding: resolved pairs.
        impl: the engine name the forward was asked for (``cnnlab.engines``; "numpy" here).
        argmax: max pooling only: the offset ``i*KW + j`` of the selected (first) maximum
            inside each window, shape (N, C, H_out, W_out); None for average pooling.
    """

    x_shape: tuple[int, int, int, int]
    dtype: np.dtype
    kernel_size: Pair
    stride: Pair
    padding: Pair
    impl: str
    argmax: np.ndarray | None = None


def prepare_pool2d(x: np.ndarray, kernel_size, stride, padding, name: str = "pool2d"):
    """Check the arguments of a pooling op and resolve its geometry (shared by every impl).

    Args:
        x: (N, C, H, W) float array.
        kernel_size: int or pair. stride: int, pair or None (= kernel_size). padding: int or pair,
            at most half the kernel (PyTorch's rule: every window must hold a real pixel).

    Returns:
        ``(kernel_size, stride, padding, out_shape)`` with ``out_shape = (N, C, H_out, W_out)``.
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} x must be a float32 or float64 numpy array; received {got}.")
    if x.ndim != 4:
        raise ValueError(f"{name} expected x of shape (N, C, H, W); received shape {x.shape}.")
    if x.size == 0:
        raise ValueError(f"{name} received an empty array of shape {x.shape}.")
    kernel_size = to_pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else to_pair(stride, "stride")
    padding = to_pair(padding, "padding", minimum=0)
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"{name} padding must be at most half the kernel size, {kernel_size[0] // 2, kernel_size[1] // 2} "
                         f"for kernel_size={kernel_size}; received padding={padding}.")
    H_out = conv_output_size(x.shape[2], kernel_size[0], stride[0], padding[0])
    W_out = conv_output_size(x.shape[3], kernel_size[1], stride[1], padding[1])
    return kernel_size, stride, padding, (x.shape[0], x.shape[1], H_out, W_out)


def check_dout(dout, cache: PoolCache, out_shape, name: str) -> None:
    """dout must have the forward output's shape and dtype (no silent upcasts of the gradients)."""
    if not isinstance(dout, np.ndarray) or dout.shape != tuple(out_shape):
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"{name} expected dout of shape {tuple(out_shape)} (the forward output's); received {got}.")
    if dout.dtype != cache.dtype:
        raise TypeError(f"{name} expected dout of dtype {cache.dtype} (the forward output's); received {dout.dtype}.")


def pool_out_shape(cache: PoolCache) -> tuple[int, int, int, int]:
    N, C, H, W = cache.x_shape
    (KH, KW), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    return (N, C, conv_output_size(H, KH, sh, ph), conv_output_size(W, KW, sw, pw))


def tiles_exactly(x_shape, kernel_size: Pair, stride: Pair, padding: Pair) -> bool:
    """True when the windows tile the input exactly (the reshape fast path applies)."""
    return (stride == kernel_size and padding == (0, 0)
            and x_shape[2] % kernel_size[0] == 0 and x_shape[3] % kernel_size[1] == 0)


def _window_views(x: np.ndarray, kernel_size: Pair, stride: Pair, padding: Pair, fill) -> list[np.ndarray]:
    """The KH*KW strided views ``v[t][n, c, oh, ow] = x_pad[n, c, oh*sh + i, ow*sw + j]``, t = i*KW + j.

    No copy when the windows tile x (a reshape) or there is no padding; otherwise one padded copy.
    """
    KH, KW = kernel_size
    N, C, H, W = x.shape
    if tiles_exactly(x.shape, kernel_size, stride, padding):
        xr = x.reshape(N, C, H // KH, KH, W // KW, KW)  # (N, C, H_out, KH, W_out, KW)
        return [xr[:, :, :, i, :, j] for i in range(KH) for j in range(KW)]  # each (N, C, H_out, W_out)
    xp = pad(x, padding, fill)  # (N, C, H+2ph, W+2pw)
    win = sliding_window_view(xp, kernel_size, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]  # (N, C, H_out, W_out, KH, KW)
    return [win[..., i, j] for i in range(KH) for j in range(KW)]  # each (N, C, H_out, W_out)


def _scatter(parts, x_shape, kernel_size: Pair, stride: Pair, padding: Pair, dtype) -> np.ndarray:
    """Put ``parts[t]`` (N, C, H_out, W_out) back under window offset t, adding where windows overlap.

    ``parts`` is an iterable yielding one array per offset (t = i*KW + j); the tiling fast
    path writes each straight into its slot of dx, with no zero fill and no adds.
    """
    KH, KW = kernel_size
    N, C, H, W = x_shape
    if tiles_exactly(x_shape, kernel_size, stride, padding):
        dx = np.empty(x_shape, dtype=dtype)  # (N, C, H, W)
        dr = dx.reshape(N, C, H // KH, KH, W // KW, KW)  # (N, C, H_out, KH, W_out, KW), a view
        for t, fill_slot in enumerate(parts):
            fill_slot(dr[:, :, :, t // KW, :, t % KW])
        return dx
    (sh, sw), (ph, pw) = stride, padding
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dtype)  # (N, C, Hp, Wp)
    H_out, W_out = conv_output_size(H, KH, sh, ph), conv_output_size(W, KW, sw, pw)
    tmp = np.empty((N, C, H_out, W_out), dtype=dtype)
    for t, fill_slot in enumerate(parts):
        i, j = divmod(t, KW)
        fill_slot(tmp)
        # plain +=: within one offset t the target pixels are distinct; overlap only happens
        # across offsets, and those adds run one after another
        dxp[:, :, i:i + sh * (H_out - 1) + 1:sh, j:j + sw * (W_out - 1) + 1:sw] += tmp
    if ph == 0 and pw == 0:
        return dxp
    return np.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])  # (N, C, H, W)


# ----- max pooling ------------------------------------------------------------------------------
def _maxpool_forward(x, kernel_size, stride=None, padding=0):
    kernel_size, stride, padding, out_shape = prepare_pool2d(x, kernel_size, stride, padding, "maxpool2d")
    views = _window_views(x, kernel_size, stride, padding, -np.inf)
    K = len(views)
    idx_dtype = np.uint8 if K <= 256 else np.intp
    out = views[0].copy()  # (N, C, H_out, W_out): running maximum
    argmax = np.zeros(out.shape, dtype=idx_dtype)
    gt = np.empty(out.shape, dtype=bool)
    step = np.empty(out.shape, dtype=idx_dtype)
    for t in range(1, K):
        # strictly greater: a tie keeps the earlier offset, so the FIRST maximum wins
        np.greater(views[t], out, out=gt)
        np.maximum(out, views[t], out=out)
        # argmax is the last t at which a strictly larger value appeared, and t only grows, so
        # argmax = max over t of (t * gt_t): two cheap ops instead of a slow masked write
        np.multiply(gt, idx_dtype(t), out=step)
        np.maximum(argmax, step, out=argmax)
    return out, PoolCache(x.shape, x.dtype, kernel_size, stride, padding, "numpy", argmax)


def _maxpool_backward(dout, cache: PoolCache):
    check_dout(dout, cache, pool_out_shape(cache), "maxpool2d_backward")
    K = cache.kernel_size[0] * cache.kernel_size[1]
    eq = np.empty(dout.shape, dtype=bool)

    def part(t):
        def fill_slot(slot):
            np.equal(cache.argmax, t, out=eq)
            np.multiply(dout, eq, out=slot)  # dout where window picked offset t, else 0
        return fill_slot

    return _scatter((part(t) for t in range(K)), cache.x_shape, cache.kernel_size, cache.stride,
                    cache.padding, dout.dtype)


# ----- average pooling ---------------------------------------------------------------------------
def _avgpool_forward(x, kernel_size, stride=None, padding=0):
    kernel_size, stride, padding, out_shape = prepare_pool2d(x, kernel_size, stride, padding, "avgpool2d")
    views = _window_views(x, kernel_size, stride, padding, 0)
    out = views[0].copy()  # (N, C, H_out, W_out): running sum
    for v in views[1:]:
        out += v
    out /= len(views)  # count_include_pad=True: always KH*KW
    return out, PoolCache(x.shape, x.dtype, kernel_size, stride, padding, "numpy", None)


def _avgpool_backward(dout, cache: PoolCache):
    check_dout(dout, cache, pool_out_shape(cache), "avgpool2d_backward")
    K = cache.kernel_size[0] * cache.kernel_size[1]
    share = dout / K  # (N, C, H_out, W_out): each window spreads its gradient evenly

    def fill_slot(slot):
        slot[...] = share

    return _scatter((fill_slot for _ in range(K)), cache.x_shape, cache.kernel_size, cache.stride,
                    cache.padding, dout.dtype)


# ----- the public pairs ------------------------------------------------------------------------
def check_cache(cache, name: str, kind: str) -> PoolCache:
    if not isinstance(cache, PoolCache) or (kind == "max") != (cache.argmax is not None):
        raise TypeError(f"{name} expected the cache returned by {name.replace('backward', 'forward')}; "
                        f"received {type(cache).__name__}.")
    return cache


def maxpool2d_forward(x: np.ndarray, kernel_size, stride=None, padding=0):
    """Forward pass of max pooling.

    Args:
        x: input batch, float32 or float64.
        kernel_size: int or (KH, KW).
        stride: int, (sh, sw) or None (= kernel_size).
        padding: int or (ph, pw), at most half the kernel; pads with -inf.

    Returns:
        ``(out, cache)``; ``cache.argmax`` holds the offset of each window's first maximum.

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out), ``H_out = floor((H + 2*ph - KH) / sh) + 1``.
    """
    return _maxpool_forward(x, kernel_size, stride, padding)


def maxpool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward pass of max pooling: each window's gradient goes to its first maximum only.

    Shape:
        dout: (N, C, H_out, W_out). dx: (N, C, H, W).
    """
    return _maxpool_backward(dout, check_cache(cache, "maxpool2d_backward", "max"))


def avgpool2d_forward(x: np.ndarray, kernel_size, stride=None, padding=0):
    """Forward pass of average pooling (zero padding counted in the divisor, as PyTorch's default).

    Args and shapes as :func:`maxpool2d_forward` (padding pads with zeros).
    """
    return _avgpool_forward(x, kernel_size, stride, padding)


def avgpool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Backward pass of average pooling: every window spreads ``dout / (KH*KW)`` over its pixels.

    Shape:
        dout: (N, C, H_out, W_out). dx: (N, C, H, W).
    """
    return _avgpool_backward(dout, check_cache(cache, "avgpool2d_backward", "avg"))


def global_avgpool2d_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Mean of each channel over all positions (PyTorch's ``adaptive_avg_pool2d(x, 1)``, flattened).

    Returns:
        ``(out, cache)``; the cache is ``(x.shape, x.dtype)``.

    Shape:
        x: (N, C, H, W). out: (N, C).
    """
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating) or x.ndim != 4 or x.size == 0:
        got = f"shape {x.shape}, dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
        raise ValueError(f"global_avgpool2d expected a non-empty float array of shape (N, C, H, W); received {got}.")
    N, C, H, W = x.shape
    # the sum of each map's H*W values, then / (H*W): einsum runs it in one pass; x.mean(axis=(2, 3))
    # gives the same to float rounding, ~4x slower on small maps (one reduction call per map)
    return np.einsum("ncp->nc", x.reshape(N, C, H * W)) / (H * W), (x.shape, x.dtype)


def global_avgpool2d_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of :func:`global_avgpool2d_forward`: each pixel gets ``dout / (H*W)`` of its channel.

    Shape:
        dout: (N, C). dx: (N, C, H, W).
    """
    (N, C, H, W), dtype = cache
    if not isinstance(dout, np.ndarray) or dout.shape != (N, C):
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"global_avgpool2d_backward expected dout of shape {(N, C)}; received {got}.")
    if dout.dtype != dtype:
        raise TypeError(f"global_avgpool2d_backward expected dout of dtype {dtype}; received {dout.dtype}.")
    dx = np.empty((N, C, H, W), dtype=dout.dtype)  # (N, C, H, W)
    dx[...] = (dout / (H * W))[:, :, None, None]  # (N, C, 1, 1) broadcast over H, W
    return dx
