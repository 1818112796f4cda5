"""The wide im2col layout (stride 1): the NumPy engine's faster columns.

Each image is laid out flat,
rows ``Wr`` apart (``Wr = max(W, W_out)``, see :class:`WideGeometry`), with ``ph`` zero
rows above and below. A patch offset (i, j) is then the flat shift ``i*Wr + j``, so every
row of ``cols`` is one *contiguous* slice of the flat image: long memory runs, fast
copies and fast adds. Output positions live on an ``H_out x Wr`` grid::

    cols[(c, i, j), (n, q)] = flat[n, c, q + i*Wr + j]      # q = oh*Wr + ow
    cols.shape == (C*KH*KW, N*H_out*Wr)

Two kinds of entries need care. A window reaching past the left or right edge of a row
reads the neighbouring row instead of a padding zero: those *wrapped* entries
(``ow + j - pw`` outside ``[0, W)``) are set to zero after the copy (a few strided
column writes), which is exactly zero padding. And when ``W_out < W`` (less padding than "same") the
``Wr - W_out`` extra columns per output row are *garbage* positions: the caller drops them
(forward) or feeds them zero gradients (backward). For "same" convolutions
(``W_out == W``) there is no garbage at all: the GEMM does no wasted work.

Example:
    >>> wide_geometry(14, 14, (3, 3), (1, 1))     # "same": no garbage columns
    WideGeometry(H_out=14, W_out=14, Wr=14, L=196, size=227)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from cnnlab.ops.shapes import Pair, conv_output_size

__all__ = ["WideGeometry", "wide_geometry", "im2col_wide", "col2im_wide", "to_wide", "from_wide"]


class WideGeometry(NamedTuple):
    """Sizes of the wide layout for one (input, kernel, padding) triple, stride 1.

    Attributes:
        H_out, W_out: output size.
        Wr: row stride of the flat image (and width of the wide output grid),
            ``max(W, W_out)``; image pixel (r, c) sits at flat index
            ``pw + (r + ph) * Wr + c``, everything else in the buffer is zero.
        L: wide output positions per image, ``H_out * Wr``.
        size: flat buffer length per (n, c), ``(H + 2*ph) * Wr + KW - 1 + pw`` (room for
            the last window of the last row).
    """

    H_out: int
    W_out: int
    Wr: int
    L: int
    size: int


def wide_geometry(H: int, W: int, kernel_size: Pair, padding: Pair) -> WideGeometry:
    """The :class:`WideGeometry` of an (H, W) input for a stride-1 convolution.

    Example:
        >>> wide_geometry(14, 14, (3, 3), (1, 1))     # "same": no garbage columns
        WideGeometry(H_out=14, W_out=14, Wr=14, L=196, size=227)
    """
    KH, KW = kernel_size
    ph, pw = padding
    H_out = conv_output_size(H, KH, 1, ph)
    W_out = conv_output_size(W, KW, 1, pw)
    Wr = max(W, W_out)
    return WideGeometry(H_out, W_out, Wr, H_out * Wr, (H + 2 * ph) * Wr + KW - 1 + pw)


def _wrapped_columns(geo: WideGeometry, W: int, KW: int, pw: int):
    """For each kernel column j, the output-column slices whose reads wrap to a neighbouring
    row (``ow + j - pw`` outside ``[0, W)``): the entries that must act as zero padding."""
    for j in range(KW):
        left = slice(0, max(0, pw - j))  # ow + j - pw < 0
        right = slice(max(0, W + pw - j), geo.Wr)  # ow + j - pw >= W
        yield j, [sl for sl in (left, right) if sl.stop > sl.start]


def _zero_wrapped(cols: np.ndarray, geo: WideGeometry, C: int, N: int, KH: int, KW: int, W: int, pw: int) -> None:
    """Zero the wrapped entries of wide columns in place."""
    grid = cols.reshape(C, KH, KW, N, geo.H_out, geo.Wr)  # (C, KH, KW, N, H_out, Wr), a view
    for j, slices in _wrapped_columns(geo, W, KW, pw):
        for sl in slices:
            grid[:, :, j, :, :, sl] = 0


def _flat_image_view(buf: np.ndarray, geo: WideGeometry, H: int, W: int, padding: Pair) -> np.ndarray:
    """The (A, B, H, W) view of the image pixels inside a flat wide buffer (A, B, size)."""
    ph, pw = padding
    A, B, _ = buf.shape
    start = pw + ph * geo.Wr
    rows = buf[:, :, start:start + H * geo.Wr].reshape(A, B, H, geo.Wr)  # (A, B, H, Wr), a view
    return rows[:, :, :, :W]  # (A, B, H, W)


def im2col_wide(x: np.ndarray, kernel_size: Pair, padding: Pair = (0, 0)) -> np.ndarray:
    """Patches of ``x`` as columns in the wide layout (stride 1).

    Args:
        x: input batch.
        kernel_size: (KH, KW).
        padding: (ph, pw) zeros on each side.

    Returns:
        ``cols[(c, i, j), (n, q)] = flat[n, c, q + i*Wr + j]`` for wide positions
        ``q = oh*Wr + ow``, with wrapped entries zeroed; columns with ``ow >= W_out`` are
        garbage.

    Shape:
        x: (N, C, H, W). cols: (C*KH*KW, N*H_out*Wr).
    """
    N, C, H, W = x.shape
    KH, KW = kernel_size
    geo = wide_geometry(H, W, kernel_size, padding)
    buf = np.zeros((N, C, geo.size), dtype=x.dtype)  # (N, C, size): zero padding, flat
    _flat_image_view(buf, geo, H, W, padding)[...] = x
    sN, sC, it = buf.strides
    # patches[c, i, j, n, q] = buf[n, c, i*Wr + j + q]; the largest index is
    # (H_out + KH - 2)*Wr + Wr - 1 + KW - 1 < size, so this as_strided view is safe (and read-only)
    patches = as_strided(buf, shape=(C, KH, KW, N, geo.L), strides=(sC, geo.Wr * it, it, sN, it),
                         writeable=False)  # (C, KH, KW, N, L)
    cols = patches.copy().reshape(C * KH * KW, N * geo.L)  # (C*KH*KW, N*L): the one copy, contiguous runs of L
    _zero_wrapped(cols, geo, C, N, KH, KW, W, padding[1])
    return cols


def col2im_wide(cols: np.ndarray, x_shape: tuple[int, int, int, int], kernel_size: Pair,
                padding: Pair = (0, 0), *, overwrite: bool = False) -> np.ndarray:
    """Adjoint of :func:`im2col_wide`: add each column back onto its (flat) patch.

    Wrapped entries are ignored (zeroed first); then KH*KW slice-adds, each over contiguous
    runs of ``L`` values of the flat buffer.

    Args:
        cols: columns in the wide layout.
        x_shape: (N, C, H, W).
        kernel_size, padding: as given to :func:`im2col_wide`.
        overwrite: allow zeroing the wrapped entries of ``cols`` in place (saves a copy).

    Shape:
        cols: (C*KH*KW, N*H_out*Wr). dx: (N, C, H, W).
    """
    N, C, H, W = x_shape
    KH, KW = kernel_size
    geo = wide_geometry(H, W, kernel_size, padding)
    if not overwrite:
        cols = cols.copy()
    _zero_wrapped(cols, geo, C, N, KH, KW, W, padding[1])
    cols5 = cols.reshape(C, KH, KW, N, geo.L)  # (C, KH, KW, N, L)
    buf = np.zeros((C, N, geo.size), dtype=cols.dtype)  # (C, N, size): C first to match cols5
    for i in range(KH):
        for j in range(KW):
            s = i * geo.Wr + j
            buf[:, :, s:s + geo.L] += cols5[:, i, j]  # (C, N, L)
    pix = _flat_image_view(buf, geo, H, W, padding)  # (C, N, H, W), a view
    return np.ascontiguousarray(pix.transpose(1, 0, 2, 3))  # (N, C, H, W)


def to_wide(a: np.ndarray, geo: WideGeometry) -> np.ndarray:
    """Lay an output-shaped array out on the wide grid, channels first, zeros in the garbage.

    Shape:
        a: (N, F, H_out, W_out). returns: (F, N*H_out*Wr).
    """
    N, F, H_out, W_out = a.shape
    if geo.Wr == W_out:  # no garbage columns: a plain transposing copy
        return a.transpose(1, 0, 2, 3).reshape(F, N * geo.L)  # (F, N*L), a copy
    wide = np.zeros((F, N, H_out, geo.Wr), dtype=a.dtype)  # (F, N, H_out, Wr)
    wide[:, :, :, :W_out] = a.transpose(1, 0, 2, 3)  # (F, N, H_out, W_out)
    return wide.reshape(F, N * geo.L)  # (F, N*L)


def from_wide(wide: np.ndarray, N: int, geo: WideGeometry) -> np.ndarray:
    """Inverse of :func:`to_wide` (drops the garbage columns); a view, not a copy.

    Shape:
        wide: (F, N*H_out*Wr). returns: (N, F, H_out, W_out).
    """
    F = wide.shape[0]
    grid = wide.reshape(F, N, geo.H_out, geo.Wr)  # (F, N, H_out, Wr)
    return grid[:, :, :, :geo.W_out].transpose(1, 0, 2, 3)  # (N, F, H_out, W_out)
