"""2-D convolution (cross-correlation, as in every deep-learning library): forward and backward.

    out[n, f, oh, ow] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]

with ``H_out = floor((H + 2*ph - KH) / sh) + 1`` (``cnnlab.ops.shapes.conv_output_size``) and
likewise for W.

Three implementations compute the same numbers (the tests prove it):

* ``"naive"``: the readable loops of ``cnnlab.ops.reference`` (the test oracle).
* ``"im2col"``: the classic layout: one ``im2col`` copy, then one GEMM per product
  (forward, dW, dX) and one ``col2im``.
* ``"fast"`` (default): for stride 1, the *wide* im2col layout of ``cnnlab.ops.im2col``, whose
  copies and adds run over long contiguous slices of a flat image (2-3x faster im2col/col2im
  than the classic layout's 14-float rows at 14x14; no extra GEMM work for "same" padding);
  other strides use ``"im2col"``. The three GEMMs are about 80% of its time.

``conv2d_forward(..., impl=...)`` picks one; the cache remembers it, so ``conv2d_backward``
always runs the matching backward. :func:`conv_impl` is the one place that maps names to code.

Example:
    >>> x = np.zeros((1, 1, 7, 7), dtype=np.float32); x[..., :3] = 10   # left three columns bright
    >>> w = np.array([[1, 0, -1]] * 3, dtype=np.float32)[None, None]   # vertical-edge detector
    >>> out, cache = conv2d_forward(x, w, None)
    >>> out[0, 0]
    array([[ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.]], dtype=float32)
    >>> dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    >>> dx.shape, dw.shape, db is None
    ((1, 1, 7, 7), (1, 1, 3, 3), True)
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from cnnlab.ops.im2col import col2im, col2im_wide, from_wide, im2col, im2col_wide, to_wide, wide_geometry
from cnnlab.ops.shapes import Pair, conv_output_size, resolve_padding, to_pair

__all__ = ["ConvCache", "conv2d_forward", "conv2d_backward", "conv2d_forward_im2col", "conv2d_backward_im2col",
           "conv2d_forward_fast", "conv2d_backward_fast", "conv_impl", "prepare_conv2d", "CONV_IMPLS"]

#: implementation names accepted by ``impl=`` (see :func:`conv_impl`)
CONV_IMPLS = ("fast", "im2col", "naive")


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs; the same fields for every implementation.

    Attributes:
        x: the input (N, C, H, W) (a reference, not a copy).
        w: the weights (F, C, KH, KW).
        b: the bias (F,) or None.
        stride, padding: resolved (sh, sw) and (ph, pw).
        impl: the implementation that made the cache (its backward is used).
        cols: the im2col matrix, or None (naive; recomputed on demand).
        layout: ``"classic"`` or ``"wide"`` (the layout of ``cols``), or None.
    """

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    stride: Pair
    padding: Pair
    impl: str
    cols: np.ndarray | None = None
    layout: str | None = None


def prepare_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding,
                   name: str = "conv2d") -> tuple[Pair, Pair, tuple[int, int, int, int]]:
    """Check the arguments of a convolution and resolve its geometry (shared by every impl).

    Args:
        x, w, b: input (N, C, H, W), weights (F, C, KH, KW), bias (F,) or None; one float dtype.
        stride: int or pair. padding: int, pair, ``"valid"`` or ``"same"``.

    Returns:
        ``(stride, padding, out_shape)`` with ``out_shape = (N, F, H_out, W_out)``.

    Raises:
        TypeError: non-array or non-float arguments, or mixed dtypes (cnnlab never upcasts).
        ValueError: wrong ranks, channel mismatch, bias shape, kernel larger than padded input.
    """
    for arr, label in ((x, "x"), (w, "w")):
        if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
            got = arr.dtype if isinstance(arr, np.ndarray) else type(arr).__name__
            raise TypeError(f"{name} {label} must be a float32 or float64 numpy array; received {got}.")
    if x.ndim != 4:
        raise ValueError(f"{name} expected x of shape (N, C, H, W); received shape {x.shape}.")
    if w.ndim != 4:
        raise ValueError(f"{name} expected w of shape (F, C, KH, KW); received shape {w.shape}.")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{name}: x has {x.shape[1]} channels (shape {x.shape}) but w expects "
                         f"{w.shape[1]} (w shape {w.shape}).")
    if w.dtype != x.dtype or (b is not None and getattr(b, "dtype", None) != x.dtype):
        got = f"x {x.dtype}, w {w.dtype}" + ("" if b is None else f", b {getattr(b, 'dtype', type(b).__name__)}")
        raise TypeError(f"{name} needs x, w and b of one dtype (no silent upcasts); received {got}.")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{name} expected b of shape ({w.shape[0]},); received {b.shape}.")
    if min(w.shape) < 1 or min(x.shape) < 1:
        raise ValueError(f"{name} received an empty array: x {x.shape}, w {w.shape}.")
    kernel = (w.shape[2], w.shape[3])
    stride = to_pair(stride, "stride")
    padding = resolve_padding(padding, kernel, stride)
    H_out = conv_output_size(x.shape[2], kernel[0], stride[0], padding[0])
    W_out = conv_output_size(x.shape[3], kernel[1], stride[1], padding[1])
    return stride, padding, (x.shape[0], w.shape[0], H_out, W_out)


def _check_dout(dout: np.ndarray, cache: ConvCache, out_shape: tuple[int, ...], name: str) -> None:
    """dout must have the forward output's shape and dtype (no silent upcasts of the gradients)."""
    if not isinstance(dout, np.ndarray) or dout.shape != tuple(out_shape):
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"{name} expected dout of shape {tuple(out_shape)} (the forward output's); received {got}.")
    if dout.dtype != cache.x.dtype:
        raise TypeError(f"{name} expected dout of dtype {cache.x.dtype} (the forward output's); received {dout.dtype}.")


def _out_shape(cache: ConvCache) -> tuple[int, int, int, int]:
    N, _, H, W = cache.x.shape
    F, _, KH, KW = cache.w.shape
    return (N, F, conv_output_size(H, KH, cache.stride[0], cache.padding[0]),
            conv_output_size(W, KW, cache.stride[1], cache.padding[1]))


def _finish_forward(out_fnhw: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Copy a (N, F, H_out, W_out) view to a contiguous array, adding the bias in the same pass."""
    out = np.empty(out_fnhw.shape, dtype=out_fnhw.dtype)  # (N, F, H_out, W_out)
    if b is None:
        out[...] = out_fnhw
    else:
        np.add(out_fnhw, b[:, None, None], out=out)
    return out


# ----- im2col (classic layout, any stride) ---------------------------------------------------
def conv2d_forward_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0)):
    """Convolution as ``w (F, C*KH*KW) @ im2col(x) (C*KH*KW, N*H_out*W_out)``.

    Same arguments, returns and shapes as :func:`conv2d_forward`.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    cols = im2col(x, w.shape[2:], stride, padding)  # (C*KH*KW, N*H_out*W_out)
    out2 = w.reshape(F, -1) @ cols  # (F, N*H_out*W_out)
    out = _finish_forward(out2.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3), b)  # (N, F, H_out, W_out)
    return out, ConvCache(x, w, b, stride, padding, "im2col", cols, "classic")


def conv2d_backward_im2col(dout: np.ndarray, cache: ConvCache):
    """Backward of :func:`conv2d_forward_im2col`: two GEMMs and one ``col2im``.

    Same arguments, returns and shapes as :func:`conv2d_backward`.
    """
    x, w, b, stride, padding = cache.x, cache.w, cache.b, cache.stride, cache.padding
    _check_dout(dout, cache, _out_shape(cache), "conv2d_backward")
    F = w.shape[0]
    cols = cache.cols if cache.layout == "classic" else im2col(x, w.shape[2:], stride, padding)  # (K, N*P)
    d2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*H_out*W_out), a copy unless N == 1
    db = d2.sum(axis=1) if b is not None else None  # (F,)
    dw = (d2 @ cols.T).reshape(w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
    dcols = w.reshape(F, -1).T @ d2  # (C*KH*KW, N*H_out*W_out)
    dx = col2im(dcols, x.shape, w.shape[2:], stride, padding)  # (N, C, H, W)
    return dx, dw, db


# ----- fast (wide layout for stride 1) ---------------------------------------------------------
def conv2d_forward_fast(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0)):
    """Stride 1: ``w @ im2col_wide(x)``, then drop the garbage columns; else :func:`conv2d_forward_im2col`.

    Same arguments, returns and shapes as :func:`conv2d_forward`.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    if stride != (1, 1):
        out, cache = conv2d_forward_im2col(x, w, b, stride, padding)
        return out, cache._replace(impl="fast")
    N, C, H, W = x.shape
    F = w.shape[0]
    geo = wide_geometry(H, W, w.shape[2:], padding)
    cols = im2col_wide(x, w.shape[2:], padding)  # (C*KH*KW, N*H_out*Wr)
    out_wide = w.reshape(F, -1) @ cols  # (F, N*H_out*Wr)
    out = _finish_forward(from_wide(out_wide, N, geo), b)  # (N, F, H_out, W_out)
    return out, ConvCache(x, w, b, stride, padding, "fast", cols, "wide")


def conv2d_backward_fast(dout: np.ndarray, cache: ConvCache):
    """Backward of :func:`conv2d_forward_fast` (wide layout for stride 1).

    Same arguments, returns and shapes as :func:`conv2d_backward`.
    """
    x, w, b, stride, padding = cache.x, cache.w, cache.b, cache.stride, cache.padding
    if stride != (1, 1):
        return conv2d_backward_im2col(dout, cache)
    _check_dout(dout, cache, _out_shape(cache), "conv2d_backward")
    F = w.shape[0]
    geo = wide_geometry(x.shape[2], x.shape[3], w.shape[2:], padding)
    cols = cache.cols if cache.layout == "wide" else im2col_wide(x, w.shape[2:], padding)  # (K, N*L)
    dwide = to_wide(dout, geo)  # (F, N*H_out*Wr), zeros in the garbage columns
    db = dwide.sum(axis=1) if b is not None else None  # (F,)
    dw = (dwide @ cols.T).reshape(w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
    dcols = w.reshape(F, -1).T @ dwide  # (C*KH*KW, N*H_out*Wr)
    dx = col2im_wide(dcols, x.shape, w.shape[2:], padding, overwrite=True)  # (N, C, H, W)
    return dx, dw, db


# ----- dispatch ------------------------------------------------------------------------------
def conv_impl(impl: str) -> tuple[Callable, Callable]:
    """``(forward, backward)`` functions for an implementation name: the single dispatch point.

    Raises:
        ValueError: for an unknown name (lists the known ones).
    """
    if impl == "fast":
        return conv2d_forward_fast, conv2d_backward_fast
    if impl == "im2col":
        return conv2d_forward_im2col, conv2d_backward_im2col
    if impl == "naive":
        from cnnlab.ops import reference  # lazy: reference imports ConvCache from this module

        return reference.conv2d_forward_naive, reference.conv2d_backward_naive
    raise ValueError(f"unknown convolution impl {impl!r}; expected one of {', '.join(map(repr, CONV_IMPLS))}.")


def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0),
                   *, impl: str = "fast") -> tuple[np.ndarray, ConvCache]:
    """Forward pass of a 2-D convolution (cross-correlation).

    Args:
        x: input batch, float32 or float64.
        w: filters, same dtype.
        b: bias, same dtype, or None.
        stride: int or (sh, sw).
        padding: int, (ph, pw), ``"valid"`` or ``"same"`` (stride 1, odd kernels); zeros.
        impl: ``"fast"``, ``"im2col"`` or ``"naive"`` (same numbers, different speed).

    Returns:
        ``(out, cache)``; ``out`` has the dtype of ``x``.

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). b: (F,). out: (N, F, H_out, W_out) with
        ``H_out = floor((H + 2*ph - KH) / sh) + 1``, ``W_out = floor((W + 2*pw - KW) / sw) + 1``.

    Raises:
        TypeError, ValueError: see :func:`prepare_conv2d`; ValueError for an unknown ``impl``.
    """
    forward, _ = conv_impl(impl)
    return forward(x, w, b, stride, padding)


def conv2d_backward(dout: np.ndarray, cache: ConvCache) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Backward pass of :func:`conv2d_forward`, by the implementation recorded in ``cache``.

    With ``cols = im2col(x)`` and ``out = w @ cols``, the chain rule gives two GEMMs and a
    scatter: ``dw = dout @ cols.T``, ``dcols = w.T @ dout`` and ``dx = col2im(dcols)``
    (``col2im`` adds the overlapping patches back), and ``db`` sums ``dout`` over N, H, W.

    The same ``dx`` has a classic closed form for stride 1: every input pixel x[c, r, s]
    feeds out[f, r - i + ph, s - j + pw] through w[f, c, i, j], so

        dx[n, c] = sum_f full_correlation(dout[n, f], rot180(w[f, c]))

    i.e. ``dx`` is itself a stride-1 convolution of ``dout`` (zero-padded by ``KH-1-ph``,
    ``KW-1-pw``) with the kernel flipped 180 degrees (``w[:, :, ::-1, ::-1]``) and its two
    channel axes swapped. The tests check this rule independently; the GEMM + ``col2im``
    route computes the same sum and measured faster here (it adds over C channels where the
    rotated-kernel route would copy patches of F >= C channels).

    Args:
        dout: upstream gradient, dtype of the forward's output.
        cache: from :func:`conv2d_forward` (any impl).

    Returns:
        ``(dx, dw, db)``; ``db`` is None when the forward had no bias.

    Shape:
        dout: (N, F, H_out, W_out). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    if not isinstance(cache, ConvCache):
        raise TypeError(f"conv2d_backward expected the cache returned by conv2d_forward; received "
                        f"{type(cache).__name__}.")
    _, backward = conv_impl(cache.impl)
    return backward(dout, cache)
