"""im2col / col2im: turn a convolution into one matrix product, and back.

A convolution applies the same (C, KH, KW) filter at every output position. ``im2col``
copies the patch under each position into one column, so all F filters at all positions
become a single GEMM::

    w.reshape(F, C*KH*KW) @ im2col(x)          # (F, C*KH*KW) @ (C*KH*KW, N*H_out*W_out)

``col2im`` is the adjoint (transpose) of ``im2col``: it scatters columns back onto the
image, *adding* where patches overlap. That is exactly the backward pass of ``im2col``.

The column layout (any stride; CS231n's)::

    cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j]
    cols.shape == (C*KH*KW, N*H_out*W_out)       # rows c-major, then i, then j

The faster **wide** layout for stride 1 (long contiguous copies) is an engine:
``cnnlab.engines.wide``.

Example:
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> cols = im2col(x, (3, 3))            # 4 output positions, 9 values each
    >>> cols.shape
    (9, 4)
    >>> cols[:, 0].reshape(3, 3)            # the top-left patch
    array([[ 0.,  1.,  2.],
           [ 4.,  5.,  6.],
           [ 8.,  9., 10.]], dtype=float32)
    >>> col2im(np.ones_like(cols), x.shape, (3, 3))[0, 0]   # how many patches cover each pixel
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.ops.shapes import Pair, conv_output_size

__all__ = ["pad", "im2col", "col2im"]


def pad(x: np.ndarray, padding: Pair, value=0) -> np.ndarray:
    """Pad H and W with ``value`` (zeros for convolution, -inf for max pooling)."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    xp = np.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)  # (N, C, H+2ph, W+2pw)
    xp[:, :, ph:ph + H, pw:pw + W] = x
    return xp


def im2col(x: np.ndarray, kernel_size: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> np.ndarray:
    """Patches of ``x`` as columns (classic layout, any stride).

    Args:
        x: input batch.
        kernel_size: (KH, KW).
        stride: (sh, sw).
        padding: (ph, pw) zeros on each side.

    Returns:
        ``cols`` with ``cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j]``.

    Shape:
        x: (N, C, H, W). cols: (C*KH*KW, N*H_out*W_out).
    """
    N, C, H, W = x.shape
    KH, KW = kernel_size
    sh, sw = stride
    H_out = conv_output_size(H, KH, sh, padding[0])
    W_out = conv_output_size(W, KW, sw, padding[1])
    xp = pad(x, padding)  # (N, C, Hp, Wp)
    win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::sh, ::sw]  # (N, C, H_out, W_out, KH, KW), a view
    # the one copy gathers the patches (always a fresh array, never a read-only view of x)
    cols = win.transpose(1, 4, 5, 0, 2, 3).copy()  # (C, KH, KW, N, H_out, W_out)
    return cols.reshape(C * KH * KW, N * H_out * W_out)  # (C*KH*KW, N*H_out*W_out)


def col2im(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: Pair,
           stride: Pair = (1, 1), padding: Pair = (0, 0)) -> np.ndarray:
    """Adjoint of :func:`im2col`: add every column back onto its patch.

    A loop over the KH*KW kernel offsets, each one strided slice-add over the whole batch
    (no ``np.add.at``: within one offset the target pixels are distinct, so ``+=`` is exact).

    Args:
        cols: columns in the classic layout.
        x_shape: (N, C, H, W) of the image the columns came from.
        kernel_size, stride, padding: as given to :func:`im2col`.

    Returns:
        ``dx`` with ``<im2col(x), cols> == <x, col2im(cols)>`` for every x.

    Shape:
        cols: (C*KH*KW, N*H_out*W_out). dx: (N, C, H, W).
    """
    N, C, H, W = x_shape
    KH, KW = kernel_size
    sh, sw = stride
    ph, pw = padding
    H_out = conv_output_size(H, KH, sh, ph)
    W_out = conv_output_size(W, KW, sw, pw)
    cols6 = cols.reshape(C, KH, KW, N, H_out, W_out)  # (C, KH, KW, N, H_out, W_out)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)  # (N, C, Hp, Wp)
    for i in range(KH):
        for j in range(KW):
            dxp[:, :, i:i + sh * (H_out - 1) + 1:sh, j:j + sw * (W_out - 1) + 1:sw] += \
                cols6[:, i, j].transpose(1, 0, 2, 3)  # (N, C, H_out, W_out)
    if ph == 0 and pw == 0:
        return dxp
    return np.ascontiguousarray(dxp[:, :, ph:ph + H, pw:pw + W])  # (N, C, H, W)
