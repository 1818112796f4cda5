"""2-D convolution (cross-correlation, as in every deep-learning library): forward and backward.

    out[n, f, oh, ow] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]

with ``H_out = floor((H + 2*ph - KH) / sh) + 1`` (``cnnlab.ops.shapes.conv_output_size``) and
likewise for W.

This module is the maths in NumPy, readable top to bottom beside its loop version
(``cnnlab.ops.reference``): one ``im2col`` copy turns the convolution into one matrix
product (GEMM), and the backward pass is two more GEMMs and one ``col2im``. The faster
routes to the same numbers (the stride-1 "wide" layout, the compiled Numba kernels) live in
``cnnlab.engines``, which also picks one per call (``naive | numpy | numba``).

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

from typing import NamedTuple

import numpy as np

from cnnlab.ops.im2col import col2im, im2col
from cnnlab.ops.shapes import Pair, conv_output_size, resolve_padding, to_pair

__all__ = ["ConvCache", "prepare_conv2d", "check_dout", "conv_out_shape", "add_bias", "conv2d_forward",
           "conv2d_backward"]


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs; the same fields for every implementation.

    Attributes:
        x: the input (N, C, H, W) (a reference, not a copy).
        w: the weights (F, C, KH, KW).
        b: the bias (F,) or None.
        stride, padding: resolved (sh, sw) and (ph, pw).
        impl: the name the forward was asked for (``"im2col"`` here; an engine name, or
            ``"fast"`` for the default engine, in ``cnnlab.engines``); the backward of that
            choice is used.
        cols: what the forward kept for the backward, by ``layout``: the im2col matrix
            (``"classic"``, ``"wide"``), the flat zero-padded input planes of the direct loops
            (``"direct"``), the Numba GEMM path's columns of a small layer, held for one
            backward (``"kept"``: a ``cnnlab.engines.numba_conv.KeptColumns``), or None (naive;
            ``"chunks"``: the Numba GEMM path recomputes each chunk's columns from x, which
            costs less than keeping them), or Winograd's transformed input, held for one backward
            (``"winograd"``: a ``cnnlab.engines.winograd.WinogradKept``; None when the batch ran in chunks).
        layout: ``"classic"``, ``"wide"``, ``"direct"``, ``"kept"``, ``"chunks"``, ``"winograd"`` or None.
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


def check_dout(dout: np.ndarray, cache: ConvCache, out_shape: tuple[int, ...], name: str) -> None:
    """dout must have the forward output's shape and dtype (no silent upcasts of the gradients)."""
    if not isinstance(dout, np.ndarray) or dout.shape != tuple(out_shape):
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"{name} expected dout of shape {tuple(out_shape)} (the forward output's); received {got}.")
    if dout.dtype != cache.x.dtype:
        raise TypeError(f"{name} expected dout of dtype {cache.x.dtype} (the forward output's); received {dout.dtype}.")


def conv_out_shape(cache: ConvCache) -> tuple[int, int, int, int]:
    N, _, H, W = cache.x.shape
    F, _, KH, KW = cache.w.shape
    return (N, F, conv_output_size(H, KH, cache.stride[0], cache.padding[0]),
            conv_output_size(W, KW, cache.stride[1], cache.padding[1]))


def add_bias(out_fnhw: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """Copy a (N, F, H_out, W_out) view to a contiguous array, adding the bias in the same pass."""
    out = np.empty(out_fnhw.shape, dtype=out_fnhw.dtype)  # (N, F, H_out, W_out)
    if b is None:
        out[...] = out_fnhw
    else:
        np.add(out_fnhw, b[:, None, None], out=out)
    return out


# ----- forward and backward ----------------------------------------------------------------
def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0),
                   *, impl: str = "fast") -> tuple[np.ndarray, ConvCache]:
    """Forward pass of a 2-D convolution (cross-correlation) as one im2col copy and one GEMM.

    Args:
        x: input batch, float32 or float64.
        w: filters, same dtype.
        b: bias, same dtype, or None.
        stride: int or (sh, sw).
        padding: int, (ph, pw), ``"valid"`` or ``"same"`` (stride 1, odd kernels); zeros.

    Returns:
        ``(out, cache)``; ``out`` has the dtype of ``x``.

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). b: (F,). out: (N, F, H_out, W_out) with
        ``H_out = floor((H + 2*ph - KH) / sh) + 1``, ``W_out = floor((W + 2*pw - KW) / sw) + 1``.

    Raises:
        TypeError, ValueError: see :func:`prepare_conv2d`.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    cols = im2col(x, w.shape[2:], stride, padding)  # (C*KH*KW, N*H_out*W_out)
    out2 = w.reshape(F, -1) @ cols  # (F, N*H_out*W_out)
    out = add_bias(out2.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3), b)  # (N, F, H_out, W_out)
    return out, ConvCache(x, w, b, stride, padding, "im2col", cols, "classic")


def conv2d_backward(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """Backward pass of :func:`conv2d_forward`: two GEMMs and one ``col2im``.

    With ``cols = im2col(x)`` and ``out = w @ cols``, the chain rule gives two GEMMs and a
    scatter: ``dw = dout @ cols.T``, ``dcols = w.T @ dout`` and ``dx = col2im(dcols)``
    (``col2im`` adds the overlapping patches back), and ``db`` sums ``dout`` over N, H, W.

    The same ``dx`` has a classic closed form for stride 1: every input pixel x[c, r, s]
    feeds out[f, r - i + ph, s - j + pw] through w[f, c, i, j], so

        dx[n, c] = sum_f full_correlation(dout[n, f], rot180(w[f, c]))

    i.e. ``dx`` is itself a stride-1 convolution of ``dout`` (zero-padded by ``KH-1-ph``,
    ``KW-1-pw``) with the kernel flipped 180 degrees (``w[:, :, ::-1, ::-1]``) and its two
    channel axes swapped: ``cnnlab.ops.reference.conv2d_dx_flipped_kernel`` computes it that way,
    and the tests prove it equal to this function and to every engine. The GEMM + ``col2im``
    route computes the same sum and measured faster here (it adds over C channels where the
    rotated-kernel route would copy patches of F >= C channels).

    Args:
        dout: upstream gradient, dtype of the forward's output.
        cache: from :func:`conv2d_forward` (or any engine's forward: the columns are
            recomputed from ``cache.x`` when the cache holds none).
        need_dx: False skips the input gradient (returned as None): one GEMM and the
            ``col2im`` fewer, for a first layer whose input is the data.

    Returns:
        ``(dx, dw, db)``; ``db`` is None when the forward had no bias.

    Shape:
        dout: (N, F, H_out, W_out). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    check_dout(dout, cache, conv_out_shape(cache), "conv2d_backward")
    F = cache.w.shape[0]
    cols = cache.cols if cache.layout == "classic" else im2col(cache.x, cache.w.shape[2:], cache.stride,
                                                                 cache.padding)  # (K, N*P)
    d2 = dout.transpose(1, 0, 2, 3).reshape(F, -1)  # (F, N*H_out*W_out), a copy unless N == 1
    x, w, b = cache.x, cache.w, cache.b
    db = d2.sum(axis=1) if b is not None else None  # (F,)
    dw = (d2 @ cols.T).reshape(w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(F, -1).T @ d2  # (C*KH*KW, N*H_out*W_out)
    dx = col2im(dcols, x.shape, w.shape[2:], cache.stride, cache.padding)  # (N, C, H, W)
    return dx, dw, db
