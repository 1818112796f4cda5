"""The Numba engine's convolution: compiled loops around NumPy's matrix products.

Compiled parallel loops (``cnnlab/engines/numba_kernels.py``) do everything but the matrix
products, each in one pass on every core. A layer with many inputs per output runs the same
three GEMMs as the NumPy op (``cnnlab.ops.conv``), 16 or so images at a time so that the
columns stay in cache (:class:`_GemmConv`); a stride-1 layer with few
(``C*KH*KW <= DIRECT_MAX_K``, e.g. a first layer's 1x3x3) convolves directly, without im2col
or GEMM. The fused Conv -> ReLU -> MaxPool runs the bias, ReLU and pooling as one pass over
the GEMM output, so the full-size activations are never written.

A 3x3, stride-1, padding-1 layer with even maps and at least ``winograd.MIN_CHANNELS`` input
channels runs Winograd's F(2x2, 3x3) instead (``cnnlab.engines.winograd``: 16 smaller GEMMs
between compiled transforms; the fused block pools inside the output transform). A direct
layer with many filters runs its backward as GEMMs (``DIRECT_BACKWARD_MAX_FK``).

The cache's ``layout`` says what the forward kept for the backward: ``"direct"`` (the flat
zero-padded input planes), ``"kept"`` (a small layer's whole im2col matrix, in a
:class:`KeptColumns` the backward empties), ``"chunks"`` (nothing: each chunk's columns
are recomputed from x, which costs less than keeping them) or ``"winograd"`` (the
transformed input, when the batch fit one chunk). A cache from any other engine works too.
"""
from __future__ import annotations

import numpy as np

from cnnlab.engines import runtime, winograd
from cnnlab.ops.conv import ConvCache, check_dout, conv_out_shape, prepare_conv2d
from cnnlab.ops.shapes import Pair

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_relu_maxpool2d_forward", "conv2d_relu_maxpool2d_backward",
           "DIRECT_MAX_K"]


#: bytes of im2col columns per chunk of images (the rest of the batch waits its turn)
_CHUNK_BYTES = 8 << 20
#: a layer whose whole batch of columns takes at most this many bytes runs in one chunk and keeps
#: its columns for the backward (simple_cnn's conv2 at batch 64: 14.4 MB); see :class:`KeptColumns`
_KEEP_BYTES = 16 << 20


class KeptColumns:
    """The forward's im2col matrix, held for one backward.

    Why: recomputing the columns costs one im2col per step (~0.6 ms for simple_cnn's conv2 at
    batch 64) and the backward needs a scratch array that size anyway: it computes dW from
    the kept columns, then overwrites them with dcols. So the columns are the backward's
    scratch, and :meth:`take` hands them over once; a second backward on the same cache
    (and a cache kept after its backward) finds nothing and recomputes them (same chunks,
    same bits). The holder is emptied at once, so no step keeps the columns past its backward.

    Shape:
        cols: (C*KH*KW * N*P,): the (C*KH*KW, N*P) columns, flat.
    """

    __slots__ = ("cols",)

    def __init__(self, cols: np.ndarray):
        self.cols = cols

    def take(self) -> np.ndarray | None:
        """The columns, or None when a backward already used them."""
        cols, self.cols = self.cols, None
        return cols


def _chunks(N: int, bytes_per_image: int) -> list[slice]:
    """Slices of the batch whose im2col columns (K, n*P) take about ``_CHUNK_BYTES``.

    Why chunks: the whole batch's columns (14 MB for simple_cnn's conv2 at batch 64) and their
    gradient do not stay in cache, so im2col writes them to memory and the GEMM reads them
    back. A chunk (37 images of that conv2) stays in the 32 MB L3: the copies run from cache,
    and OpenBLAS is faster on these operands too (measured 185-193 vs 170 GFLOP/s forward,
    193-197 vs 184 for dX). Fewer, larger chunks (8 MB rather than 4) keep the number of
    thread wake-ups per step down, which matters when the machine is shared. A layer whose
    columns fit in ``_KEEP_BYTES`` runs in one chunk instead and keeps them (:class:`KeptColumns`);
    a larger one's backward recomputes each chunk's columns rather than keeping them all.
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
        per_image = self.K * self.P * x.dtype.itemsize
        # a small layer keeps its columns for the backward, and runs in one chunk: every switch
        # between OpenBLAS's threads and Numba's wakes sleeping threads, and one chunk has half of them
        self.keep = N * per_image <= _KEEP_BYTES
        self.chunks = [slice(0, N)] if self.keep else _chunks(N, per_image)
        self.kept: KeptColumns | None = None
        nb = self.chunks[0].stop
        self._cols: np.ndarray | None = None  # the columns' scratch, reused by every chunk (allocated on first use)
        self._cols_size = self.K * nb * self.P
        self._g = np.empty(F * nb * self.P, dtype=x.dtype)

    def _scratch(self, buf, rows, n):
        return buf[:rows * n * self.P].reshape(rows, n * self.P)  # contiguous view, (rows, n*P)

    def cols(self, sl: slice) -> np.ndarray:
        """Chunk ``sl``'s im2col columns (C*KH*KW, n*P), in the scratch array."""
        n = sl.stop - sl.start
        if self._cols is None:
            self._cols = np.empty(self._cols_size, dtype=self.x.dtype)
        cols = self._scratch(self._cols, self.K, n)  # (C*KH*KW, n*P)
        (KH, KW), (sh, sw), (ph, pw) = self.w.shape[2:], self.stride, self.padding
        runtime.kernels().im2col(self.x[sl], KH, KW, sh, sw, ph, pw, self.H_out, self.W_out, cols)
        return cols

    def forward(self, finish) -> None:
        """For each chunk: ``finish(g, sl)`` with ``g = w @ im2col(x[sl])``; a layer small
        enough keeps its columns in ``self.kept`` (a :class:`KeptColumns`)."""
        for sl in self.chunks:
            cols = self.cols(sl)
            g = self._scratch(self._g, self.w2.shape[0], sl.stop - sl.start)  # (F, n*P)
            np.matmul(self.w2, cols, out=g)
            finish(g, sl)
        if self.keep:
            self.kept = KeptColumns(self._cols)

    def cache(self, b, impl: str) -> ConvCache:
        """The forward's ConvCache: layout ``"kept"`` with the columns, else ``"chunks"``."""
        if self.kept is not None:
            return ConvCache(self.x, self.w, b, self.stride, self.padding, impl, self.kept, "kept")
        return ConvCache(self.x, self.w, b, self.stride, self.padding, impl, None, "chunks")

    def backward(self, make_d2, need_dx: bool, use_bias: bool, kept: KeptColumns | None = None):
        """``(dx, dw, db)`` from ``make_d2(sl, d2, sums)``, which writes chunk ``sl``'s dout in
        GEMM layout and its planes' sums (F, n) in float64; ``kept``: the forward's columns, if any.

        Chunks add up in order (dw = ((dw_0 + dw_1) + dw_2) ...), whichever caller asks:
        the fused block and the plain layer get the same bits.
        """
        x, F = self.x, self.w2.shape[0]
        dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None  # (N, C, H, W)
        cols = kept.take() if kept is not None and self.keep else None  # (K*N*P,), or None when already used
        if cols is not None:
            self._cols = cols  # the scratch: dcols overwrite the columns chunk by chunk (no im2col)
        dwT = None
        db = np.zeros(F, dtype=np.float64)  # (F,)
        sums = np.empty(F * self.chunks[0].stop, dtype=np.float64)
        kernels = runtime.kernels()
        (KH, KW), (sh, sw), (ph, pw) = self.w.shape[2:], self.stride, self.padding
        for sl in self.chunks:
            n = sl.stop - sl.start
            d2 = self._scratch(self._g, F, n)  # (F, n*P)
            part_sums = sums[:F * n].reshape(F, n)
            make_d2(sl, d2, part_sums)
            db += part_sums.sum(axis=1)  # plane sums, in float64
            # (cols @ d2.T), not d2 @ cols.T: the same products, and OpenBLAS runs this shape faster
            chunk_cols = self.cols(sl) if cols is None else cols.reshape(self.K, n * self.P)  # (K, n*P), n = N if kept
            part = chunk_cols @ d2.T  # (C*KH*KW, F)
            if dwT is None:
                dwT = part
            else:
                dwT += part
            if need_dx:  # the columns are used up: their scratch takes dcols (col2im zeroes its wrapped entries)
                dcols = np.matmul(self.w2.T, d2, out=chunk_cols)  # (C*KH*KW, n*P)
                kernels.col2im(dcols, KH, KW, sh, sw, ph, pw, self.H_out, self.W_out, dx[sl])
        dw = np.ascontiguousarray(dwT.T).reshape(self.w.shape)  # (F, C*KH*KW) -> (F, C, KH, KW)
        return dx, dw, (db.astype(x.dtype) if use_bias else None)


def _kept(cache: ConvCache) -> KeptColumns | None:
    """The columns a Numba forward kept (layout ``"kept"``), else None."""
    return cache.cols if cache.layout == "kept" and isinstance(cache.cols, KeptColumns) else None


def _bias_or_zeros(b: np.ndarray | None, F: int, dtype) -> np.ndarray:
    """The kernels always add a bias: zeros stand in for none (x + 0 == x for every x but -0)."""
    return np.zeros(F, dtype=dtype) if b is None else b


#: with Numba, the "fast" path convolves stride-1 layers directly (no im2col, no GEMM) when each
#: output needs at most this many multiply-adds (C*KH*KW): a first layer's 9 (1 channel, 3x3)
#: do not pay for copying 9 values per output into a matrix (measured: see BENCHMARKS.md)
DIRECT_MAX_K = 32


#: the direct loops also run the backward while the filters times their inputs, F*C*KH*KW, stay
#: below this; above it the backward runs as GEMMs (im2col of x, then the three products): the
#: direct weight gradient passes over the whole input once per filter. Measured (2 cores,
#: BENCHMARKS.md): RGB 3->64 3x3 (1,728): GEMMs 2x faster; 1->32 (288), 2->32 (576) and 3->16
#: (432): the direct loops 1.2-1.9x faster
DIRECT_BACKWARD_MAX_FK = 1024


def _direct(w: np.ndarray, stride: Pair) -> bool:
    """Whether the Numba fast path convolves with ``w`` directly (forward)."""
    return tuple(stride) == (1, 1) and w.shape[1] * w.shape[2] * w.shape[3] <= DIRECT_MAX_K


def _direct_backward(w: np.ndarray, stride: Pair) -> bool:
    """Whether the backward of a direct convolution runs the direct loops too (else GEMMs)."""
    return _direct(w, stride) and w.size < DIRECT_BACKWARD_MAX_FK


#: the Numba engine convolves 3x3, stride-1, padding-1 layers with even H and W by Winograd's
#: F(2x2, 3x3) (``cnnlab.engines.winograd``): 2.25x fewer multiply-adds than the GEMM path
WINOGRAD = True


def _winograd(x_shape, w: np.ndarray, stride: Pair, padding: Pair) -> bool:
    """Whether the Numba path runs this (non-direct) convolution by Winograd's F(2x2, 3x3)."""
    return WINOGRAD and winograd.applies(x_shape, w.shape, stride, padding)


def _winograd_kept(cache: ConvCache):
    """The transformed input a Winograd forward kept, else None."""
    return cache.cols if cache.layout == "winograd" and isinstance(cache.cols, winograd.WinogradKept) else None


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


def _direct_gradients(dout: np.ndarray, cache: ConvCache, need_dx: bool):
    """dx, dw, db of a direct convolution (the cache's padded planes, or x padded again)."""
    x, w, b, padding = cache.x, cache.w, cache.b, cache.padding
    if cache.layout == "direct":
        xpf, Wp = cache.cols, x.shape[3] + 2 * padding[1]
    else:
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])
    dout = np.ascontiguousarray(dout)
    dw, db = np.empty(w.shape, dtype=w.dtype), np.empty(w.shape[0], dtype=w.dtype)
    kernels = runtime.kernels()
    kernels.direct_conv_backward_w(xpf, dout, Wp, dw, db)
    dx = None
    if need_dx:
        dx = np.empty(x.shape, dtype=x.dtype)  # (N, C, H, W)
        kernels.direct_conv_backward_x(dout, np.ascontiguousarray(w), Wp, padding[0], padding[1], dx)
    return dx, dw, (db if b is not None else None)


# ----- convolution ---------------------------------------------------------------------------------------
def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0)):
    """Same arguments, returns and shapes as ``cnnlab.ops.conv.conv2d_forward``."""
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    N, F, H_out, W_out = out_shape
    if _direct(w, stride):
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])  # (N, C, size)
        out = np.empty(out_shape, dtype=x.dtype)  # (N, F, H_out, W_out)
        runtime.kernels().direct_conv_forward(xpf, np.ascontiguousarray(w), _bias_or_zeros(b, F, x.dtype), Wp, out)
        return out, ConvCache(x, w, b, stride, padding, "numba", xpf, "direct")
    out = np.empty(out_shape, dtype=x.dtype)  # (N, F, H_out, W_out)
    flat, bias, kernels = out.reshape(N, F, H_out * W_out), _bias_or_zeros(b, F, x.dtype), runtime.kernels()
    if _winograd(x.shape, w, stride, padding):
        kept = winograd.forward(x, w, lambda M, sl: kernels.wino_output(M, bias, out[sl]))
        return out, ConvCache(x, w, b, stride, padding, "numba", kept, "winograd")
    gemm = _GemmConv(x, w, stride, padding, out_shape)
    gemm.forward(lambda g, sl: kernels.g_to_nchw(g, bias, b is not None, flat[sl]))
    return out, gemm.cache(b, "numba")


def conv2d_backward(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True):
    """Same arguments, returns and shapes as ``cnnlab.ops.conv.conv2d_backward``."""
    x, w, b, stride, padding = cache.x, cache.w, cache.b, cache.stride, cache.padding
    check_dout(dout, cache, conv_out_shape(cache), "conv2d_backward")
    if _direct_backward(w, stride):
        return _direct_gradients(dout, cache, need_dx)
    N, F, H_out, W_out = dout.shape
    if _winograd(x.shape, w, stride, padding):
        dout = np.ascontiguousarray(dout)
        return winograd.backward(x, w, lambda sl, dM, sums: runtime.kernels().wino_grad_output(dout[sl], dM, sums),
                                 need_dx, b is not None, _winograd_kept(cache))
    flat, kernels = np.ascontiguousarray(dout).reshape(N, F, H_out * W_out), runtime.kernels()
    return _GemmConv(x, w, stride, padding, dout.shape).backward(
        lambda sl, d2, sums: kernels.nchw_to_g(flat[sl], d2, sums), need_dx, b is not None, _kept(cache))


# ----- fused Conv -> ReLU -> MaxPool ----------------------------------------------------------------------
def conv2d_relu_maxpool2d_forward(x, w, b, stride, padding, pool_size, out_shape):
    """``(pooled, conv_cache, argmax)``; arguments already checked by ``cnnlab.engines.fused``.

    Shape:
        x: (N, C, H, W). pooled, argmax: (N, F, H_out // PH, W_out // PW).
    """
    N, F, H_out, W_out = out_shape
    PH, PW = pool_size
    pooled = np.empty((N, F, H_out // PH, W_out // PW), dtype=x.dtype)  # (N, F, Hp, Wp)
    argmax = np.empty(pooled.shape, dtype=np.uint8 if PH * PW <= 256 else np.intp)  # as the pool op's
    bias, zero = _bias_or_zeros(b, F, x.dtype), x.dtype.type(0)
    kernels = runtime.kernels()
    if _direct(w, stride):
        xpf, Wp = _flat_padded(x, padding, w.shape[2:])  # (N, C, size)
        kernels.direct_conv_relu_maxpool(xpf, np.ascontiguousarray(w), bias, Wp, H_out, W_out, zero, pooled, argmax)
        return pooled, ConvCache(x, w, b, stride, padding, "numba", xpf, "direct"), argmax
    if _winograd(x.shape, w, stride, padding):
        if (PH, PW) == (2, 2):  # a pooling window is an output tile: bias, ReLU and pool in the output transform
            kept = winograd.forward(x, w, lambda M, sl: kernels.wino_output_relu_maxpool(M, bias, zero, pooled[sl],
                                                                                          argmax[sl]))
            return pooled, ConvCache(x, w, b, stride, padding, "numba", kept, "winograd"), argmax
        out, conv_cache = conv2d_forward(x, w, b, stride, padding)  # other windows: the plain ops (the same bits)
        act, mask = np.empty_like(out), np.empty(out.shape, dtype=bool)
        kernels.relu_forward(out.reshape(-1), act.reshape(-1), mask.reshape(-1))
        kernels.maxpool_forward(act, PH, PW, PH, PW, 0, 0, zero, pooled, argmax)
        return pooled, conv_cache, argmax
    gemm = _GemmConv(x, w, stride, padding, out_shape)
    gemm.forward(lambda g, sl: kernels.g_bias_relu_maxpool(g, bias, zero, H_out, W_out, PH, PW, pooled[sl], argmax[sl]))
    return pooled, gemm.cache(b, "numba"), argmax


def _dense_conv_gradient(dout: np.ndarray, cache) -> np.ndarray:
    """The conv output's full gradient behind ReLU + max pooling, as the plain ops compute it:
    each window's gradient at its maximum where that maximum was positive, zeros elsewhere.

    Shape:
        dout: (N, F, Hp, Wp) -> (N, F, H_out, W_out).
    """
    PH, PW = cache.pool_size
    dconv = np.empty(conv_out_shape(cache.conv), dtype=dout.dtype)  # (N, F, H_out, W_out)
    passed = dout * (cache.pooled > 0)  # a window's gradient reaches a positive maximum only
    runtime.kernels().maxpool_backward(passed, cache.argmax, PH, PW, PH, PW, 0, 0, dconv)
    return dconv


def conv2d_relu_maxpool2d_backward(dout, cache, *, need_dx: bool = True):
    """``(dx, dw, db)`` from a ``cnnlab.engines.fused.ConvReLUPoolCache``; dout already checked.

    No ReLU mask is needed: a window's gradient reaches the conv exactly when its maximum
    was positive, ``relu(v) > 0  <=>  v > 0``.
    """
    conv, pooled = cache.conv, cache.pooled
    N, F, H_out, W_out = conv_out_shape(conv)
    PH, PW = cache.pool_size
    if conv.layout == "direct" and _direct_backward(conv.w, conv.stride):
        if need_dx:  # the conv's dense gradient, then the layer-by-layer backward: the same bits
            return _direct_gradients(_dense_conv_gradient(dout, cache), conv, True)
        dw, db = np.empty(conv.w.shape, dtype=conv.w.dtype), np.empty(F, dtype=conv.w.dtype)
        Wp = conv.x.shape[3] + 2 * conv.padding[1]
        runtime.kernels().direct_conv_relu_maxpool_backward_w(conv.cols, np.ascontiguousarray(dout), pooled,
                                                              cache.argmax, Wp, H_out, W_out, dw, db)
        return None, dw, (db if conv.b is not None else None)
    dout, argmax, kernels = np.ascontiguousarray(dout), cache.argmax, runtime.kernels()
    if _winograd(conv.x.shape, conv.w, conv.stride, conv.padding):
        if (PH, PW) == (2, 2):
            return winograd.backward(conv.x, conv.w, lambda sl, dM, sums: kernels.wino_grad_output_maxpool_relu(
                dout[sl], pooled[sl], argmax[sl], dM, sums), need_dx, conv.b is not None, _winograd_kept(conv))
        return conv2d_backward(_dense_conv_gradient(dout, cache), conv, need_dx=need_dx)  # the plain ops' bits
    return _GemmConv(conv.x, conv.w, conv.stride, conv.padding, (N, F, H_out, W_out)).backward(
        lambda sl, d2, sums: kernels.maxpool_relu_backward_to_g(dout[sl], pooled[sl], argmax[sl], H_out, W_out,
                                                                PH, PW, d2, sums),
        need_dx, conv.b is not None, _kept(conv))
