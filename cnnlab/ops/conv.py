"""2-D convolution (cross-correlation, as in every deep-learning library): forward and backward.

    out[n, f, oh, ow] = b[f] + sum_{c, i, j} w[f, c, i, j] * x_pad[n, c, oh*sh + i, ow*sw + j]

with ``H_out = floor((H + 2*ph - KH) / sh) + 1`` (``cnnlab.ops.shapes.conv_output_size``) and
likewise for W.

Three implementations compute the same numbers (the tests prove it):

* ``"naive"``: the readable loops of ``cnnlab.ops.reference`` (the test oracle).
* ``"im2col"``: the classic layout: one ``im2col`` copy, then one GEMM per product
  (forward, dW, dX) and one ``col2im``.
* ``"fast"`` (default): the best the backend has (``cnnlab.backend``).
  With Numba (the default when installed) compiled parallel loops (``_numba_kernels.py``) do
  everything but the matrix products, each in one pass on every core. A layer with many
  inputs per output runs the same three GEMMs as ``"im2col"``, 16 or so images at a time so
  that the columns stay in cache (:class:`_GemmConv`); a stride-1 layer with few
  (``C*KH*KW <= DIRECT_MAX_K``, e.g. a first layer's 1x3x3) convolves directly, without
  im2col or GEMM. Without Numba (``CNNLAB_NO_NUMBA=1``), stride 1 uses the *wide* im2col
  layout of ``cnnlab.ops.im2col``, whose NumPy copies and adds run over long contiguous slices
  of a flat image (2-3x faster than the classic layout's 14-float rows at 14x14); other
  strides use ``"im2col"``.

``conv2d_forward(..., impl=...)`` picks one; the cache remembers it, so ``conv2d_backward``
always runs the matching backward. :func:`conv_impl` is the one place that maps names to code.

``conv2d_backward(..., need_dx=False)`` skips the input gradient (one GEMM and the
``col2im``): the training loop asks for it on the first layer, whose input is the data.

:func:`conv2d_relu_maxpool2d_forward` / ``_backward`` run Conv -> ReLU -> MaxPool (windows
that tile the map) as one op with the same numbers as the three ops in a row; with Numba the
bias, ReLU and pooling are one pass over the GEMM output and the full-size activations are
never written. ``fit`` uses it for such layer triples (``cnnlab.layers.conv.fuse_layers``).

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

from cnnlab import backend
from cnnlab.ops.im2col import _pad, col2im, col2im_wide, from_wide, im2col, im2col_wide, to_wide, wide_geometry
from cnnlab.ops.shapes import Pair, conv_output_size, resolve_padding, to_pair

__all__ = ["ConvCache", "conv2d_forward", "conv2d_backward", "conv2d_forward_im2col", "conv2d_backward_im2col",
           "conv2d_forward_fast", "conv2d_backward_fast", "conv_impl", "prepare_conv2d", "CONV_IMPLS",
           "ConvReLUPoolCache", "conv2d_relu_maxpool2d_forward", "conv2d_relu_maxpool2d_backward",
           "can_fuse_maxpool"]

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
        cols: what the forward kept for the backward, by ``layout``: the im2col matrix
            (``"classic"``, ``"wide"``), the flat zero-padded input planes of the direct loops
            (``"direct"``), or None (naive; ``"chunks"``: the Numba GEMM path recomputes each
            chunk's columns from x, which costs less than keeping them).
        layout: ``"classic"``, ``"wide"``, ``"direct"``, ``"chunks"`` or None.
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


def conv2d_backward_im2col(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True):
    """Backward of :func:`conv2d_forward_im2col`: two GEMMs and one ``col2im``.

    Same arguments, returns and shapes as :func:`conv2d_backward`.
    """
    _check_dout(dout, cache, _out_shape(cache), "conv2d_backward")
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


# ----- fast: Numba kernels around the GEMMs, a chunk of images at a time ---------------------------------------
#: bytes of im2col columns per chunk of images (the rest of the batch waits its turn)
_CHUNK_BYTES = 8 << 20


def _chunks(N: int, bytes_per_image: int) -> list[slice]:
    """Slices of the batch whose im2col columns (K, n*P) take about ``_CHUNK_BYTES``.

    Why chunks: the whole batch's columns (14 MB for simple_cnn's conv2 at batch 64) and their
    gradient do not stay in cache, so im2col writes them to memory and the GEMM reads them
    back. A chunk (37 images of that conv2) stays in the 32 MB L3: the copies run from cache,
    and OpenBLAS is faster on these operands too (measured 185-193 vs 170 GFLOP/s forward,
    193-197 vs 184 for dX). Fewer, larger chunks (8 MB rather than 4) keep the number of
    thread wake-ups per step down, which matters when the machine is shared. The backward
    recomputes each chunk's columns instead of keeping 14 MB per layer.
    """
    nb = max(1, _CHUNK_BYTES // max(1, bytes_per_image))
    return [slice(s, min(s + nb, N)) for s in range(0, N, nb)]


class _GemmConv:
    """The GEMM convolution of the Numba fast path: per chunk of images, im2col (compiled),
    one GEMM, and a compiled pass that turns the GEMM output into what the caller wants.

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). a chunk's columns: (C*KH*KW, n*P), its GEMM
        output ``g``: (F, n*P), P = H_out*W_out.
    """

    def __init__(self, x, w, stride, padding, out_shape):
        self.x, self.w = np.ascontiguousarray(x), w
        self.stride, self.padding = stride, padding
        N, F, self.H_out, self.W_out = out_shape
        self.P = self.H_out * self.W_out
        self.K = w.shape[1] * w.shape[2] * w.shape[3]
        self.w2 = w.reshape(F, self.K)  # (F, C*KH*KW)
        self.chunks = _chunks(N, self.K * self.P * x.dtype.itemsize)
        nb = self.chunks[0].stop
        self._cols = np.empty(self.K * nb * self.P, dtype=x.dtype)  # scratch, reused by every chunk
        self._g = np.empty(F * nb * self.P, dtype=x.dtype)

    def _scratch(self, buf, rows, n):
        return buf[:rows * n * self.P].reshape(rows, n * self.P)  # contiguous view, (rows, n*P)

    def cols(self, sl: slice) -> np.ndarray:
        n = sl.stop - sl.start
        cols = self._scratch(self._cols, self.K, n)  # (C*KH*KW, n*P)
        (KH, KW), (sh, sw), (ph, pw) = self.w.shape[2:], self.stride, self.padding
        backend.kernels().im2col(self.x[sl], KH, KW, sh, sw, ph, pw, self.H_out, self.W_out, cols)
        return cols

    def forward(self, finish) -> None:
        """For each chunk: ``finish(g, sl)`` with ``g = w @ im2col(x[sl])``."""
        for sl in self.chunks:
            cols = self.cols(sl)
            g = self._scratch(self._g, self.w2.shape[0], sl.stop - sl.start)  # (F, n*P)
            np.matmul(self.w2, cols, out=g)
            finish(g, sl)

    def backward(self, make_d2, need_dx: bool, use_bias: bool):
        """``(dx, dw, db)`` from ``make_d2(sl, d2)``, which writes chunk ``sl``'s dout in GEMM layout.

        Chunks add up in order (dw = ((dw_0 + dw_1) + dw_2) ...), whichever caller asks:
        the fused block and the plain layer get the same bits.
        """
        x, F = self.x, self.w2.shape[0]
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None  # (N, C, H, W)
        dwT = db = None
        kernels = backend.kernels()
        (KH, KW), (sh, sw), (ph, pw) = self.w.shape[2:], self.stride, self.padding
        for sl in self.chunks:
            n = sl.stop - sl.start
            d2 = self._scratch(self._g, F, n)  # (F, n*P)
            make_d2(sl, d2)
            if use_bias:
                part = d2.sum(axis=1)  # (F,)
                if db is None:
                    db = part
                else:
                    db += part
            # (cols @ d2.T), not d2 @ cols.T: the same products, and OpenBLAS runs this shape faster
            part = self.cols(sl) @ d2.T  # (C*KH*KW, F)
            if dwT is None:
                dwT = part
            else:
                dwT += part
            if need_dx:  # the columns are used up: their scratch takes dcols (col2im zeroes its wrapped entries)
                dcols = np.matmul(self.w2.T, d2, out=self._scratch(self._cols, self.K, n))  # (C*KH*KW, n*P)
                kernels.col2im(dcols, KH, KW, sh, sw, ph, pw, self.H_out, self.W_out, dx[sl])
        dw = np.ascontiguousarray(dwT.T).reshape(self.w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
        return dx, dw, db


def _bias_or_zeros(b: np.ndarray | None, F: int, dtype) -> np.ndarray:
    """The kernels always add a bias: zeros stand in for none (x + 0 == x for every x but -0)."""
    return np.zeros(F, dtype=dtype) if b is None else b


#: with Numba, the "fast" path convolves stride-1 layers directly (no im2col, no GEMM) when each
#: output needs at most this many multiply-adds (C*KH*KW): a first layer's 9 (1 channel, 3x3)
#: do not pay for copying 9 values per output into a matrix (measured: see BENCHMARKS.md)
DIRECT_MAX_K = 32


def _direct(w: np.ndarray, stride: Pair) -> bool:
    """Whether the Numba fast path convolves with ``w`` directly."""
    return tuple(stride) == (1, 1) and w.shape[1] * w.shape[2] * w.shape[3] <= DIRECT_MAX_K


def _flat_padded(x: np.ndarray, padding: Pair, kernel: Pair) -> tuple[np.ndarray, int]:
    """``(xpf, Wp)``: each zero-padded plane flat, rows ``Wp = W + 2*pw`` apart, with room for the
    last tap of the last row (the direct kernels' wide grid, as ``im2col.wide_geometry``).

    Shape:
        x: (N, C, H, W). xpf: (N, C, (H + 2*ph)*Wp + KW - 1).
    """
    N, C, H, W = x.shape
    (ph, pw), KW = padding, kernel[1]
    Hp, Wp = H + 2 * ph, W + 2 * pw
    xpf = np.zeros((N, C, Hp * Wp + KW - 1), dtype=x.dtype)  # (N, C, size)
    xpf[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = x  # a view of the padded planes
    return xpf, Wp


def _direct_backward(dout: np.ndarray, cache: ConvCache, need_dx: bool):
    """dx, dw, db of a direct convolution (the cache's padded planes, or x padded again)."""
    x, w, b, padding = cache.x, cache.w, cache.b, cache.padding
    if cache.layout == "direct":
        xpf, Wp = cache.cols, x.shape[3] + 2 * padding[1]
    else:
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])
    dout = np.ascontiguousarray(dout)
    dw, db = np.empty(w.shape, dtype=w.dtype), np.empty(w.shape[0], dtype=w.dtype)
    kernels = backend.kernels()
    kernels.direct_conv_backward_w(xpf, dout, Wp, dw, db)
    dx = None
    if need_dx:
        dx = np.empty(x.shape, dtype=x.dtype)  # (N, C, H, W)
        kernels.direct_conv_backward_x(dout, np.ascontiguousarray(w), Wp, padding[0], padding[1], dx)
    return dx, dw, (db if b is not None else None)


# ----- fast (Numba, or NumPy's wide layout for stride 1) --------------------------------------------------
def conv2d_forward_fast(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0)):
    """The fastest path the backend has (see the module docstring).

    Same arguments, returns and shapes as :func:`conv2d_forward`.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    if backend.use_numba() and _direct(w, stride):
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])  # (N, C, size)
        out = np.empty(out_shape, dtype=x.dtype)  # (N, F, H_out, W_out)
        backend.kernels().direct_conv_forward(xpf, np.ascontiguousarray(w), _bias_or_zeros(b, F, x.dtype), Wp, out)
        return out, ConvCache(x, w, b, stride, padding, "fast", xpf, "direct")
    if backend.use_numba():
        out = np.empty(out_shape, dtype=x.dtype)  # (N, F, H_out, W_out)
        flat, bias, kernels = out.reshape(N, F, H_out * W_out), _bias_or_zeros(b, F, x.dtype), backend.kernels()
        _GemmConv(x, w, stride, padding, out_shape).forward(
            lambda g, sl: kernels.g_to_nchw(g, bias, b is not None, flat[sl]))
        return out, ConvCache(x, w, b, stride, padding, "fast", None, "chunks")
    if stride != (1, 1):
        out, cache = conv2d_forward_im2col(x, w, b, stride, padding)
        return out, cache._replace(impl="fast")
    C, H, W = x.shape[1:]
    geo = wide_geometry(H, W, w.shape[2:], padding)
    cols = im2col_wide(x, w.shape[2:], padding)  # (C*KH*KW, N*H_out*Wr)
    out_wide = w.reshape(F, -1) @ cols  # (F, N*H_out*Wr)
    out = _finish_forward(from_wide(out_wide, N, geo), b)  # (N, F, H_out, W_out)
    return out, ConvCache(x, w, b, stride, padding, "fast", cols, "wide")


def conv2d_backward_fast(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True):
    """Backward of :func:`conv2d_forward_fast` (any cache: it follows the cache's layout).

    Same arguments, returns and shapes as :func:`conv2d_backward`.
    """
    x, w, b, stride, padding = cache.x, cache.w, cache.b, cache.stride, cache.padding
    _check_dout(dout, cache, _out_shape(cache), "conv2d_backward")
    if backend.use_numba():
        if _direct(w, stride):
            return _direct_backward(dout, cache, need_dx)
        N, F, H_out, W_out = dout.shape
        flat, kernels = np.ascontiguousarray(dout).reshape(N, F, H_out * W_out), backend.kernels()
        return _GemmConv(x, w, stride, padding, dout.shape).backward(
            lambda sl, d2: kernels.nchw_to_g(flat[sl], d2), need_dx, b is not None)
    if stride != (1, 1) or cache.layout == "classic":
        return conv2d_backward_im2col(dout, cache, need_dx=need_dx)
    # wide layout (stride 1, NumPy)
    F = w.shape[0]
    geo = wide_geometry(x.shape[2], x.shape[3], w.shape[2:], padding)
    cols = cache.cols if cache.layout == "wide" else im2col_wide(x, w.shape[2:], padding)  # (K, N*L)
    dwide = to_wide(dout, geo)  # (F, N*H_out*Wr), zeros in the garbage columns
    db = dwide.sum(axis=1) if b is not None else None  # (F,)
    dw = (dwide @ cols.T).reshape(w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
    if not need_dx:
        return None, dw, db
    dcols = w.reshape(F, -1).T @ dwide  # (C*KH*KW, N*H_out*Wr)
    dx = col2im_wide(dcols, x.shape, w.shape[2:], padding, overwrite=True)  # (N, C, H, W)
    return dx, dw, db


# ----- fused Conv -> ReLU -> MaxPool -------------------------------------------------------------------
class ConvReLUPoolCache(NamedTuple):
    """What :func:`conv2d_relu_maxpool2d_backward` needs.

    Attributes:
        conv: the convolution's cache.
        pool_size: (KH, KW) of the pooling windows (stride = window, no padding).
        pooled: the block's output (N, F, Hp, Wp) (a reference).
        argmax: offset ``i*KW + j`` of each window's first maximum (N, F, Hp, Wp).
        parts: NumPy backend: ``(relu_mask, pool_cache)`` of the unfused ops; else None.
    """

    conv: ConvCache
    pool_size: Pair
    pooled: np.ndarray
    argmax: np.ndarray
    parts: tuple | None = None


def can_fuse_maxpool(conv_out_hw: tuple[int, int], kernel_size: Pair, stride: Pair, padding: Pair) -> bool:
    """Whether max pooling with these settings can be fused after a conv of output size (H, W):
    its windows must tile the map exactly (stride == kernel, no padding, sizes divisible)."""
    (H, W), (KH, KW) = conv_out_hw, kernel_size
    return tuple(stride) == (KH, KW) and tuple(padding) == (0, 0) and H % KH == 0 and W % KW == 0


def conv2d_relu_maxpool2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1),
                                  padding=(0, 0), pool_size=2):
    """``maxpool2d(relu(conv2d(x, w, b)), pool_size)`` as one op (the "fast" convolution).

    The same numbers as the three ops in a row, bit for bit (the same GEMM, the same float
    adds, the same first-maximum rule). With Numba the bias, ReLU and pooling are one pass
    over the GEMM output, and the backward needs no ReLU mask: a window's gradient reaches the
    conv exactly when its maximum was positive, ``relu(v) > 0  <=>  v > 0``.

    Args:
        x, w, b, stride, padding: as :func:`conv2d_forward`.
        pool_size: int or (KH, KW) of the max pooling; its windows must tile the conv output
            (stride = window, no padding, see :func:`can_fuse_maxpool`).

    Returns:
        ``(pooled, cache)``.

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). pooled: (N, F, H_out // PH, W_out // PW).

    Raises:
        ValueError: windows that do not tile the conv output, and the errors of conv2d_forward.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    pool_size = to_pair(pool_size, "pool_size")
    if not can_fuse_maxpool((H_out, W_out), pool_size, pool_size, (0, 0)):
        raise ValueError(f"conv2d_relu_maxpool2d needs pooling windows that tile the conv output "
                         f"{(H_out, W_out)}; received pool_size={pool_size}. Run the three ops separately.")
    PH, PW = pool_size
    if not backend.use_numba():
        from cnnlab.ops.activation import relu_forward
        from cnnlab.ops.pool import maxpool2d_forward

        out, conv_cache = conv2d_forward_fast(x, w, b, stride, padding)
        act, mask = relu_forward(out)
        pooled, pool_cache = maxpool2d_forward(act, pool_size, impl="fast")
        return pooled, ConvReLUPoolCache(conv_cache, pool_size, pooled, pool_cache.argmax, (mask, pool_cache))
    pooled = np.empty((N, F, H_out // PH, W_out // PW), dtype=x.dtype)  # (N, F, Hp, Wp)
    argmax = np.empty(pooled.shape, dtype=np.uint8 if PH * PW <= 256 else np.intp)  # as the pool op's
    bias, zero = _bias_or_zeros(b, F, x.dtype), x.dtype.type(0)
    kernels = backend.kernels()
    if _direct(w, stride):
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])  # (N, C, size)
        kernels.direct_conv_relu_maxpool(xpf, np.ascontiguousarray(w), bias, Wp, H_out, W_out, zero, pooled, argmax)
        conv_cache = ConvCache(x, w, b, stride, padding, "fast", xpf, "direct")
    else:
        _GemmConv(x, w, stride, padding, out_shape).forward(
            lambda g, sl: kernels.g_bias_relu_maxpool(g, bias, zero, H_out, W_out, PH, PW, pooled[sl], argmax[sl]))
        conv_cache = ConvCache(x, w, b, stride, padding, "fast", None, "chunks")
    return pooled, ConvReLUPoolCache(conv_cache, pool_size, pooled, argmax)


def conv2d_relu_maxpool2d_backward(dout: np.ndarray, cache: ConvReLUPoolCache, *, need_dx: bool = True):
    """Backward of :func:`conv2d_relu_maxpool2d_forward`: ``(dx, dw, db)`` (``dx`` None unless need_dx).

    Shape:
        dout: (N, F, Hp, Wp) (the pooled output's). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    if not isinstance(cache, ConvReLUPoolCache):
        raise TypeError(f"conv2d_relu_maxpool2d_backward expected the cache returned by "
                        f"conv2d_relu_maxpool2d_forward; received {type(cache).__name__}.")
    pooled = cache.pooled
    if not isinstance(dout, np.ndarray) or dout.shape != pooled.shape:
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"conv2d_relu_maxpool2d_backward expected dout of shape {pooled.shape} (the forward "
                         f"output's); received {got}.")
    if dout.dtype != pooled.dtype:
        raise TypeError(f"conv2d_relu_maxpool2d_backward expected dout of dtype {pooled.dtype}; received {dout.dtype}.")
    if cache.parts is not None:  # the NumPy backend ran the three ops: run their backwards
        from cnnlab.ops.activation import relu_backward
        from cnnlab.ops.pool import maxpool2d_backward

        mask, pool_cache = cache.parts
        dconv = relu_backward(maxpool2d_backward(dout, pool_cache), mask)  # (N, F, H_out, W_out)
        return conv2d_backward(dconv, cache.conv, need_dx=need_dx)
    N, F, H_out, W_out = _out_shape(cache.conv)
    PH, PW = cache.pool_size
    conv = cache.conv
    if conv.layout == "direct":
        if need_dx:  # the conv's dense gradient, then the layer-by-layer backward: the same bits
            dconv = np.empty((N, F, H_out, W_out), dtype=dout.dtype)  # (N, F, H_out, W_out)
            passed = dout * (pooled > 0)  # (N, F, Hp, Wp): a window's gradient reaches a positive maximum only
            backend.kernels().maxpool_backward(passed, cache.argmax, PH, PW, PH, PW, 0, 0, dconv)
            return _direct_backward(dconv, conv, True)
        dw, db = np.empty(conv.w.shape, dtype=conv.w.dtype), np.empty(F, dtype=conv.w.dtype)
        Wp = conv.x.shape[3] + 2 * conv.padding[1]
        backend.kernels().direct_conv_relu_maxpool_backward_w(conv.cols, np.ascontiguousarray(dout), pooled,
                                                              cache.argmax, Wp, H_out, W_out, dw, db)
        return None, dw, (db if conv.b is not None else None)
    dout, argmax, kernels = np.ascontiguousarray(dout), cache.argmax, backend.kernels()
    return _GemmConv(conv.x, conv.w, conv.stride, conv.padding, (N, F, H_out, W_out)).backward(
        lambda sl, d2: kernels.maxpool_relu_backward_to_g(dout[sl], pooled[sl], argmax[sl], H_out, W_out, PH, PW, d2),
        need_dx, conv.b is not None)


# ----- dispatch ------------------------------------------------------------------------------
def conv_impl(impl: str) -> tuple[Callable, Callable]:
    """``(forward, backward)`` functions for an implementation name: the single dispatch point.

    The backward takes ``(dout, cache, *, need_dx=True)``.

    Raises:
        ValueError: for an unknown name (lists the known ones).
    """
    if impl == "fast":
        return conv2d_forward_fast, conv2d_backward_fast
    if impl == "im2col":
        return conv2d_forward_im2col, conv2d_backward_im2col
    if impl == "naive":
        from cnnlab.ops import reference  # lazy: reference imports ConvCache from this module

        def naive_backward(dout, cache, *, need_dx=True):
            dx, dw, db = reference.conv2d_backward_naive(dout, cache)
            return (dx if need_dx else None), dw, db

        return reference.conv2d_forward_naive, naive_backward
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


def conv2d_backward(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True
                    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
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
        need_dx: False skips the input gradient (returned as None): one GEMM and the
            ``col2im`` fewer, for a first layer whose input is the data.

    Returns:
        ``(dx, dw, db)``; ``db`` is None when the forward had no bias.

    Shape:
        dout: (N, F, H_out, W_out). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    if not isinstance(cache, ConvCache):
        raise TypeError(f"conv2d_backward expected the cache returned by conv2d_forward; received "
                        f"{type(cache).__name__}.")
    _, backward = conv_impl(cache.impl)
    return backward(dout, cache, need_dx=need_dx)
