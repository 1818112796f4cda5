"""Compiled loops for the memory-bound parts of convolution (im2col, Winograd's transforms, direct
loops), ReLU, max pooling, batch norm and the optimizer updates.

Imported lazily through ``cnnlab.engines.runtime.kernels()``, as is ``blas_threads`` (OpenBLAS's
jobs on the kernels' threads); nothing else imports Numba. Each kernel writes into arrays its
caller allocated (so the caller owns shapes, dtypes and the NumPy fallback) and returns nothing. The im2col/col2im, layout, ReLU and pooling kernels compute
exactly what the NumPy code of ``cnnlab.ops.conv`` / ``pool`` / ``activation`` computes,
element by element, including which maximum wins a tie, NaN propagation and the order of
the additions where windows overlap (tested bit for bit). The direct convolution sums in
its own fixed order (equal to float rounding, tested against the reference loops and
PyTorch); the fused kernels repeat the arithmetic of the plain ones, so fusing never
changes a bit. Batch norm and the GEMM path's bias gradient (``_plane_sum``) sum in float64
(NumPy's path sums in the input's dtype): the same values to float rounding, tested against
NumPy and PyTorch.

Why they pay (measured on 2 cores, batch 64, see BENCHMARKS.md): NumPy runs these steps as
several separate passes over arrays of megabytes, on one core; here each is a single pass,
split over the cores with ``prange``, and steps that follow each other are fused (bias with
the layout change after the GEMM; bias, ReLU and max pooling in one read of the GEMM output).

Compilation: ``cache=True`` stores the machine code next to this file (or in
``NUMBA_CACHE_DIR``), so only the first run on a machine pays it: 0.3-3 s per kernel and
dtype, about a minute for all of them (float32; 75-85 s measured on 2 busy cores), 0.5 s to load them
from the cache afterwards.
``fastmath`` stays off: results must not depend on the engine.

Layout words used below: ``g`` is a GEMM-side array ``(F, N*P)``, P = H_out*W_out, i.e.
``(F, N, H_out, W_out)`` flattened; ``nchw`` is the usual ``(N, F, H_out, W_out)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["im2col", "col2im", "g_to_nchw", "nchw_to_g", "relu_forward", "relu_backward", "maxpool_forward",
           "maxpool_backward", "g_bias_relu_maxpool", "maxpool_relu_backward_to_g", "direct_conv_forward",
           "direct_conv_relu_maxpool", "direct_conv_backward_w", "direct_conv_relu_maxpool_backward_w",
           "direct_conv_backward_x", "batchnorm_forward_train", "batchnorm_backward_train", "adam_step", "sgd_step",
           "adam_step_serial", "sgd_step_serial", "wino_input", "wino_output", "wino_output_relu_maxpool",
           "wino_grad_output", "wino_grad_output_maxpool_relu", "wino_grad_input", "warm_up"]

_jit = njit(parallel=True, cache=True, fastmath=False, nogil=True)


@_jit
def warm_up(x):
    """A trivial parallel loop: starts the threading layer (``cnnlab.engines.runtime.kernels``)."""
    for i in prange(x.shape[0]):
        x[i] = i


# Speed rule for every loop below: index 1-D views from 0 (``dst = cols[r, a:b]``, then
# ``dst[q]`` for q in range(...)). Numba wraps negative indices as Python does, so an index it
# cannot prove non-negative (``cols[r, a + q]``) costs a check per element and stops the loop
# from being vectorized: measured 4-6x slower copies.


# ----- im2col / col2im (classic layout, any stride) ------------------------------------------------
@_jit
def im2col(x, KH, KW, sh, sw, ph, pw, H_out, W_out, cols):
    """cols[(c, i, j), (n, oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j] (zeros outside x).

    x: (N, C, H, W), C-contiguous; cols: (C*KH*KW, N*H_out*W_out), written in full.
    """
    N, C, H, W = x.shape
    if sh == 1 and sw == 1 and H_out == H and W_out == W:
        _im2col_same(x, KH, KW, ph, pw, cols)
        return
    P = H_out * W_out
    for t in prange(C * KH * KW * N):
        r = t // N
        n = t - r * N
        c = r // (KH * KW)
        ij = r - c * (KH * KW)
        i = ij // KW
        j = ij - i * KW
        dst = cols[r, n * P:(n + 1) * P]
        src = x[n, c].reshape(H * W)
        lo = 0  # valid output columns: 0 <= ow*sw + j - pw < W
        while lo < W_out and lo * sw + j - pw < 0:
            lo += 1
        hi = W_out
        while hi > lo and (hi - 1) * sw + j - pw >= W:
            hi -= 1
        for oh in range(H_out):
            d = dst[oh * W_out:(oh + 1) * W_out]
            h = oh * sh + i - ph
            if h < 0 or h >= H:
                d[:] = 0
                continue
            d[:lo] = 0
            d[hi:] = 0
            s = src[h * W + lo * sw + j - pw:]
            dm = d[lo:hi]
            for q in range(hi - lo):
                dm[q] = s[q * sw]


@njit(cache=True, fastmath=False, inline="always")
def _im2col_same(x, KH, KW, ph, pw, cols):
    """``im2col`` for stride 1 and an output as large as the input. Each patch row is the image
    shifted by (i - ph, j - pw): one long copy, then zeros where a row wrapped into its
    neighbour. One task per image plane (c, n) writes its KH*KW shifted copies: the plane is
    read from cache, and a task does enough work to hide its start-up (measured 1.5-1.9x
    faster than a task per copy on 7x7 and 14x14 planes)."""
    N, C, H, W = x.shape
    P = H * W
    for t in prange(C * N):
        c = t // N
        n = t - c * N
        src = x[n, c].reshape(H * W)
        for i in range(KH):
            for j in range(KW):
                dst = cols[(c * KH + i) * KW + j, n * P:(n + 1) * P]
                off = (i - ph) * W + (j - pw)  # dst[q] = src[q + off] for lo <= q < hi
                lo = min(P, max(0, -off))
                hi = max(lo, min(P, P - off))
                for q in range(lo):
                    dst[q] = 0
                d = dst[lo:hi]
                s = src[lo + off:hi + off]
                for q in range(hi - lo):
                    d[q] = s[q]
                for q in range(hi, P):
                    dst[q] = 0
                for ow in range(max(0, pw - j)):
                    for oh in range(H):
                        dst[oh * W + ow] = 0
                for ow in range(max(0, W + pw - j), W):
                    for oh in range(H):
                        dst[oh * W + ow] = 0


@_jit
def col2im(cols, KH, KW, sh, sw, ph, pw, H_out, W_out, dx):
    """dx[n, c] = sum over (i, j) of the columns added back onto their patches (overwrites dx).

    The (i, j) order is NumPy ``col2im``'s, so every pixel's sum is rounded identically. For
    stride 1 and output as large as the input, the wrapped entries of ``cols`` are set to 0
    first (cols is the caller's scratch array) so that each (i, j) is one long add.
    cols: (C*KH*KW, N*H_out*W_out); dx: (N, C, H, W), C-contiguous.
    """
    N, C, H, W = dx.shape
    P = H_out * W_out
    same = sh == 1 and sw == 1 and H_out == H and W_out == W
    for t in prange(C * N):  # c-major: consecutive tasks read consecutive segments of the same rows
        c = t // N
        n = t - c * N
        d = dx[n, c].reshape(H * W)
        d[:] = 0
        for i in range(KH):
            for j in range(KW):
                src = cols[(c * KH + i) * KW + j, n * P:(n + 1) * P]
                if same:
                    for ow in range(max(0, pw - j)):
                        for oh in range(H):
                            src[oh * W + ow] = 0
                    for ow in range(max(0, W + pw - j), W):
                        for oh in range(H):
                            src[oh * W + ow] = 0
                    off = (i - ph) * W + (j - pw)  # d[q + off] += src[q] for lo <= q < hi
                    lo = min(P, max(0, -off))
                    hi = max(lo, min(P, P - off))
                    dd = d[lo + off:hi + off]
                    ss = src[lo:hi]
                    for q in range(hi - lo):
                        dd[q] += ss[q]
                    continue
                lo = 0
                while lo < W_out and lo * sw + j - pw < 0:
                    lo += 1
                hi = W_out
                while hi > lo and (hi - 1) * sw + j - pw >= W:
                    hi -= 1
                for oh in range(H_out):
                    h = oh * sh + i - ph
                    if h < 0 or h >= H or hi <= lo:
                        continue
                    dd = d[h * W + lo * sw + j - pw:]
                    ss = src[oh * W_out + lo:oh * W_out + hi]
                    for q in range(hi - lo):
                        dd[q * sw] += ss[q]


# ----- layout changes around the GEMM ---------------------------------------------------------------
@_jit
def g_to_nchw(g, b, use_bias, out):
    """out[n, f, p] = g[f, n*P + p] (+ b[f]): the forward's transposing copy with the bias add.

    g: (F, N*P); b: (F,) (ignored unless use_bias); out: (N, F, P).
    """
    N, F, P = out.shape
    for t in prange(F * N):  # f-major: g is read row after row
        f = t // N
        n = t - f * N
        s = g[f, n * P:(n + 1) * P]
        o = out[n, f]
        if use_bias:
            bf = b[f]
            for p in range(P):
                o[p] = s[p] + bf
        else:
            o[:] = s


@njit(cache=True, fastmath=False, inline="always")
def _plane_sum(v):
    """The sum of the 1-D array ``v`` in float64, in one fixed order: four running sums over
    ``v[0::4]``, ``v[1::4]``, ... (four independent chains: one chain is bound by the add's
    latency), then the tail, then ``(s0 + s1) + (s2 + s3)``. The bias gradient of the GEMM path
    (``nchw_to_g``, ``maxpool_relu_backward_to_g``): summed while the plane is in cache
    instead of a NumPy pass over the whole gradient afterwards; one order for both, so the
    fused block and the plain layers give the same bits."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    m = v.shape[0] // 4 * 4
    for q in range(0, m, 4):
        s0 += v[q]
        s1 += v[q + 1]
        s2 += v[q + 2]
        s3 += v[q + 3]
    for q in range(m, v.shape[0]):
        s0 += v[q]
    return (s0 + s1) + (s2 + s3)


@_jit
def nchw_to_g(a, g, sums):
    """g[f, n*P + p] = a[n, f, p]: dout laid out for the backward GEMMs, and each plane's sum
    for the bias gradient, ``sums[f, n] = _plane_sum(g[f, n*P:(n+1)*P])`` (float64).

    a: (N, F, P); g: (F, N*P); sums: (F, N) float64.
    """
    N, F, P = a.shape
    for t in prange(F * N):
        f = t // N
        n = t - f * N
        dst = g[f, n * P:(n + 1) * P]
        dst[:] = a[n, f]
        sums[f, n] = _plane_sum(dst)


# ----- ReLU -------------------------------------------------------------------------------------------
@_jit
def relu_forward(x, out, mask):
    """out = np.maximum(x, 0) (NaN stays NaN), mask = x > 0; flat arrays of one length.

    Written as selects, not branches: the sign of an activation is a coin toss, and a
    mispredicted branch per element costs more than the whole memory pass.
    """
    for k in prange(x.shape[0]):
        v = x[k]
        pos = v > 0
        mask[k] = pos
        out[k] = v if (pos or v != v) else 0


@_jit
def relu_backward(dout, mask, dx):
    """dx = dout * mask, the product itself (a masked-out NaN stays NaN, -x gives -0, as NumPy's)."""
    for k in prange(dout.shape[0]):
        dx[k] = dout[k] * mask[k]


# ----- max pooling ---------------------------------------------------------------------------------------
# The rule, as the NumPy path computes it: a running ``np.maximum`` over the window in row-major
# order (so a NaN makes the result NaN from then on) and an offset that moves only on a strictly
# greater value (the FIRST maximum wins a tie; nothing moves it after a NaN). Written like that
# per element it is slow (unpredictable branches); so each window is first reduced without NaN
# care, while noting whether it held a NaN, and only such rare windows are redone exactly.
@njit(cache=True, fastmath=False)
def _window_exact(src, r, row, KH, KW, shift, zero, relu):
    """(max, first offset) of the window at src[r + i*row + j], exactly as the NumPy path,
    after adding ``shift`` and (when ``relu``) applying ReLU (NaN stays NaN)."""
    best = zero
    arg = 0
    for i in range(KH):
        for j in range(KW):
            v = src[r + i * row + j] + shift
            if relu and not v > zero and v == v:
                v = zero
            if i == 0 and j == 0:
                best = v
            elif v > best:
                best = v
                arg = i * KW + j
            elif v != v:
                best = v
    return best, arg


@njit(cache=True, fastmath=False, inline="always")  # inlined: a per-plane / per-window hot spot
def _window_fast(src, r, row, KH, KW, shift, zero, relu):
    """(max, first offset, held a NaN) of a window; exact whenever it held no NaN."""
    if KH == 2 and KW == 2:  # the usual 2x2 pool, unrolled
        u0 = src[r] + shift
        u1 = src[r + 1] + shift
        u2 = src[r + row] + shift
        u3 = src[r + row + 1] + shift
        nan = (u0 != u0) | (u1 != u1) | (u2 != u2) | (u3 != u3)
        if relu:
            u0, u1, u2, u3 = max(u0, zero), max(u1, zero), max(u2, zero), max(u3, zero)
        best = u0
        arg = 0
        if u1 > best:
            best = u1
            arg = 1
        if u2 > best:
            best = u2
            arg = 2
        if u3 > best:
            best = u3
            arg = 3
        return best, arg, nan
    best = zero
    arg = 0
    nan = False
    for i in range(KH):
        for j in range(KW):
            v = src[r + i * row + j] + shift
            nan |= v != v
            if relu:
                v = max(v, zero)
            if (i == 0 and j == 0) or v > best:
                best = v
                arg = i * KW + j
    return best, arg, nan


@njit(cache=True, fastmath=False, inline="always")  # inlined: a per-plane / per-window hot spot
def _relu_pool2x2_row(src, r0, row, shift, zero, prow, arow):
    """prow[qw], arow[qw] = max and first-max offset of relu(window + shift) for the 2x2 windows
    at src[r0 + 2*qw], src[r0 + row + 2*qw]; written with selects so that the row vectorizes
    (35% faster than window by window), then the rare windows that held a NaN redone exactly."""
    Wq = prow.shape[0]
    a = src[r0:r0 + 2 * Wq]
    b = src[r0 + row:r0 + row + 2 * Wq]
    anynan = False
    for qw in range(Wq):
        u0 = a[2 * qw] + shift
        u1 = a[2 * qw + 1] + shift
        u2 = b[2 * qw] + shift
        u3 = b[2 * qw + 1] + shift
        anynan |= (u0 != u0) | (u1 != u1) | (u2 != u2) | (u3 != u3)
        v0 = u0 if u0 > zero else zero
        v1 = u1 if u1 > zero else zero
        v2 = u2 if u2 > zero else zero
        v3 = u3 if u3 > zero else zero
        g = v1 > v0
        best = v1 if g else v0
        arg = 1 if g else 0
        g = v2 > best
        best = v2 if g else best
        arg = 2 if g else arg
        g = v3 > best
        best = v3 if g else best
        arg = 3 if g else arg
        prow[qw] = best
        arow[qw] = arg
    if anynan:
        for qw in range(Wq):
            best, arg = _window_exact(src, r0 + 2 * qw, row, 2, 2, shift, zero, True)
            prow[qw] = best
            arow[qw] = arg


@_jit
def maxpool_forward(x, KH, KW, sh, sw, ph, pw, zero, out, argmax):
    """out = max over each window (-inf padding), argmax = offset i*KW + j of its first maximum.

    x: (N, C, H, W); out, argmax: (N, C, H_out, W_out); zero: 0 in x's dtype.
    """
    N, C, H, W = x.shape
    H_out, W_out = out.shape[2], out.shape[3]
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        src = x[n, c].reshape(H * W)
        for oh in range(H_out):
            h0 = oh * sh - ph
            for ow in range(W_out):
                w0 = ow * sw - pw
                if h0 >= 0 and w0 >= 0 and h0 + KH <= H and w0 + KW <= W:  # inside: no padding
                    r = h0 * W + w0
                    best, arg, nan = _window_fast(src, r, W, KH, KW, zero, zero, False)
                    if nan:
                        best, arg = _window_exact(src, r, W, KH, KW, zero, zero, False)
                else:  # a border window: -inf where it overhangs
                    best = -np.inf
                    arg = 0
                    for i in range(KH):
                        h = h0 + i
                        for j in range(KW):
                            w = w0 + j
                            v = x[n, c, h, w] if (0 <= h < H and 0 <= w < W) else -np.inf
                            if i == 0 and j == 0:
                                best = v
                            elif v > best:
                                best = v
                                arg = i * KW + j
                            elif v != v:
                                best = v
                out[n, c, oh, ow] = best
                argmax[n, c, oh, ow] = arg


@_jit
def maxpool_backward(dout, argmax, KH, KW, sh, sw, ph, pw, dx):
    """dx = each window's gradient added onto its selected pixel (overwrites dx).

    Overlapping windows add in the NumPy path's order (by window offset, then position), so
    the sums round identically. dout, argmax: (N, C, H_out, W_out); dx: (N, C, H, W).
    """
    N, C, H, W = dx.shape
    H_out, W_out = dout.shape[2], dout.shape[3]
    overlap = sh < KH or sw < KW
    for t in prange(N * C):
        n = t // C
        c = t - n * C
        dx[n, c] = 0
        for k in range(KH * KW if overlap else 1):
            for oh in range(H_out):
                for ow in range(W_out):
                    a = argmax[n, c, oh, ow]
                    if overlap and a != k:
                        continue
                    i = a // KW
                    h = oh * sh + i - ph
                    w = ow * sw + (a - i * KW) - pw
                    if 0 <= h < H and 0 <= w < W:
                        dx[n, c, h, w] += dout[n, c, oh, ow]


# ----- fused: GEMM output -> bias -> ReLU -> max pool (windows that tile the map) ------------------------------
@njit(cache=True, fastmath=False, inline="always")  # inlined: the per-plane hot spot of both fused kernels
def _bias_relu_pool_plane(src, row, KH, KW, bias, zero, prow, arow):
    """prow, arow = maxpool(relu(plane + bias)) and its first-max offsets, for one plane whose
    rows start ``row`` apart in ``src`` (W_out for the GEMM output, Wp for the wide grid).
    prow, arow: (Hq, Wq); the windows (KH, KW) tile the plane."""
    Hq, Wq = prow.shape
    for qh in range(Hq):
        if KH == 2 and KW == 2:
            _relu_pool2x2_row(src, qh * 2 * row, row, bias, zero, prow[qh], arow[qh])
            continue
        for qw in range(Wq):
            r = qh * KH * row + qw * KW
            best, arg, nan = _window_fast(src, r, row, KH, KW, bias, zero, True)
            if nan:
                best, arg = _window_exact(src, r, row, KH, KW, bias, zero, True)
            prow[qh, qw] = best
            arow[qh, qw] = arg


@_jit
def g_bias_relu_maxpool(g, b, zero, H_out, W_out, KH, KW, pooled, argmax):
    """pooled = maxpool(relu(g + b)) read straight from the GEMM output, in one pass.

    The numbers of ``g_to_nchw`` + ``relu_forward`` + ``maxpool_forward`` (the same float
    adds, the same tie rule), without writing the full-size activations. ``b`` is zeros for
    a conv without bias (adding +0 changes no value); ``zero`` is 0 in g's dtype, so that
    every intermediate keeps that dtype.
    g: (F, N*H_out*W_out); b: (F,); pooled, argmax: (N, F, H_out//KH, W_out//KW).
    """
    N, F = pooled.shape[:2]
    P = H_out * W_out
    for t in prange(F * N):  # f-major: g is read row after row
        f = t // N
        n = t - f * N
        _bias_relu_pool_plane(g[f, n * P:(n + 1) * P], W_out, KH, KW, b[f], zero, pooled[n, f], argmax[n, f])


@_jit
def maxpool_relu_backward_to_g(dpool, pooled, argmax, H_out, W_out, KH, KW, g, sums):
    """g = the conv output's gradient in GEMM layout: each window's gradient at its maximum
    where that maximum was positive (ReLU passed it), zero elsewhere (overwrites g); and each
    plane's sum for the bias gradient, as ``nchw_to_g``.

    dpool, pooled, argmax: (N, F, Hp, Wp); g: (F, N*H_out*W_out); sums: (F, N) float64.
    """
    N, F, Hp, Wp = dpool.shape
    P = H_out * W_out
    for t in prange(F * N):
        f = t // N
        n = t - f * N
        base = n * P
        dst = g[f, base:base + P]
        dst[:] = 0
        for qh in range(Hp):
            for qw in range(Wp):
                a = argmax[n, f, qh, qw]
                i = a // KW
                d = dpool[n, f, qh, qw]
                dst[(qh * KH + i) * W_out + qw * KW + (a - i * KW)] = d if pooled[n, f, qh, qw] > 0 else 0
        sums[f, n] = _plane_sum(dst)


# ----- direct convolution, stride 1 (few input values per output: C*KH*KW small) ------------------------------
# A first layer (1 channel, 3x3: 9 products per output) gains nothing from a GEMM: im2col copies
# 9 values to save 9 multiply-adds. These loops convolve directly, on the *wide* grid of
# ``cnnlab.ops.im2col``: each zero-padded image plane is flat with rows Wp = W + 2*pw apart
# (``xpf``: (N, C, size), size = Hp*Wp + KW - 1), so tap (i, j) of every output at once is one
# contiguous slice ``xpf[n, c, i*Wp + j : i*Wp + j + L]``, L = H_out*Wp, and each tap is one
# long vectorized multiply-add. The wide grid has Wp - W_out extra columns per row (garbage,
# never read out; zero gradient). Every sum has one fixed order, whatever the thread count,
# and the fused variants run the very same arithmetic, so fused and layer-by-layer agree bit
# for bit:
#   out[n, f, oh, ow] = (sum over c, i, j in that order, from 0, of w[f,c,i,j]*xp[...]) + b[f]
#   dw[f, c, i, j]    = sum over q (wide positions) of (sum over n of d*xp)
#   db[f]             = sum over q of (sum over n of d)
#   dx[n, c, h, w]    = sum over f, i, j in that order of w[f,c,i,j]*d[...]
@njit(cache=True, fastmath=False, inline="always")  # inlined: a per-plane / per-window hot spot
def _conv_plane(xpf, w, n, f, Wp, acc):
    """acc[q] = sum over (c, i, j) of w[f, c, i, j] * xpf[n, c, i*Wp + j + q], q < L (the wide plane)."""
    C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    L = acc.shape[0]
    acc[:] = 0
    for c in range(C):
        for i in range(KH):
            if KW == 3:  # the usual 3-wide kernel: three taps per pass over acc, same order of adds
                w0, w1, w2 = w[f, c, i, 0], w[f, c, i, 1], w[f, c, i, 2]
                s0 = xpf[n, c, i * Wp:i * Wp + L]
                s1 = xpf[n, c, i * Wp + 1:i * Wp + 1 + L]
                s2 = xpf[n, c, i * Wp + 2:i * Wp + 2 + L]
                for q in range(L):
                    acc[q] = ((acc[q] + w0 * s0[q]) + w1 * s1[q]) + w2 * s2[q]
                continue
            for j in range(KW):
                wt = w[f, c, i, j]
                src = xpf[n, c, i * Wp + j:i * Wp + j + L]
                for q in range(L):
                    acc[q] += wt * src[q]


@njit(cache=True, fastmath=False, inline="always")
def _conv_planes4(xpf, w, n, f, Wp, acc):
    """``_conv_plane`` for the four filters f..f+3 at once (3-wide kernels): each input value
    loaded feeds four filters instead of one. Every filter's sum runs in ``_conv_plane``'s
    order, so the bits are the same. acc: (4, L)."""
    C, KH = w.shape[1], w.shape[2]
    L = acc.shape[1]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    acc[:] = 0
    for c in range(C):
        for i in range(KH):
            s0 = xpf[n, c, i * Wp:i * Wp + L]
            s1 = xpf[n, c, i * Wp + 1:i * Wp + 1 + L]
            s2 = xpf[n, c, i * Wp + 2:i * Wp + 2 + L]
            u0, u1, u2 = w[f, c, i, 0], w[f, c, i, 1], w[f, c, i, 2]
            v0, v1, v2 = w[f + 1, c, i, 0], w[f + 1, c, i, 1], w[f + 1, c, i, 2]
            x0, x1, x2 = w[f + 2, c, i, 0], w[f + 2, c, i, 1], w[f + 2, c, i, 2]
            y0, y1, y2 = w[f + 3, c, i, 0], w[f + 3, c, i, 1], w[f + 3, c, i, 2]
            for q in range(L):
                t0, t1, t2 = s0[q], s1[q], s2[q]
                a0[q] = ((a0[q] + u0 * t0) + u1 * t1) + u2 * t2
                a1[q] = ((a1[q] + v0 * t0) + v1 * t1) + v2 * t2
                a2[q] = ((a2[q] + x0 * t0) + x1 * t1) + x2 * t2
                a3[q] = ((a3[q] + y0 * t0) + y1 * t1) + y2 * t2


@njit(cache=True, fastmath=False, inline="always")
def _conv_filters(xpf, w, n, f, Wp, acc4):
    """The wide planes of filters f.. (four when they exist and the kernel is 3 wide, else one)
    into acc4[0..k); returns k."""
    if w.shape[3] == 3 and f + 4 <= w.shape[0]:
        _conv_planes4(xpf, w, n, f, Wp, acc4)
        return 4
    _conv_plane(xpf, w, n, f, Wp, acc4[0])
    return 1


@_jit
def direct_conv_forward(xpf, w, b, Wp, out):
    """out = conv(x, w) + b, stride 1. xpf: (N, C, size) flat padded planes; w: (F, C, KH, KW);
    b: (F,); out: (N, F, H_out, W_out)."""
    N, F, H_out, W_out = out.shape
    L = H_out * Wp
    for n in prange(N):
        acc4 = np.empty((4, L), dtype=out.dtype)
        f = 0
        while f < F:
            k = _conv_filters(xpf, w, n, f, Wp, acc4)
            for e in range(k):
                acc, bf = acc4[e], b[f + e]
                for oh in range(H_out):
                    o = out[n, f + e, oh]
                    a = acc[oh * Wp:oh * Wp + W_out]
                    for ow in range(W_out):
                        o[ow] = a[ow] + bf
            f += k


@_jit
def direct_conv_relu_maxpool(xpf, w, b, Wp, H_out, W_out, zero, pooled, argmax):
    """pooled = maxpool(relu(conv(x, w) + b)), stride-1 conv, pooling windows that tile its
    output; never writes the full-size activations. pooled, argmax: (N, F, H_out//PH, W_out//PW)."""
    N, F, Hq, Wq = pooled.shape
    PH, PW = H_out // Hq, W_out // Wq
    L = H_out * Wp
    for n in prange(N):
        acc4 = np.empty((4, L), dtype=pooled.dtype)
        f = 0
        while f < F:
            k = _conv_filters(xpf, w, n, f, Wp, acc4)
            for e in range(k):
                _bias_relu_pool_plane(acc4[e], Wp, PH, PW, b[f + e], zero, pooled[n, f + e], argmax[n, f + e])
            f += k


@njit(cache=True, fastmath=False, inline="always")  # inlined: a per-plane / per-window hot spot
def _accumulate_plane(xpf, n, Wp, dwide, acc, accb):
    """acc[c, i, j, q] += dwide[q] * xpf[n, c, i*Wp + j + q]; accb[q] += dwide[q]."""
    C, KH, KW, L = acc.shape
    for q in range(L):
        accb[q] += dwide[q]
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                a = acc[c, i, j]
                src = xpf[n, c, i * Wp + j:i * Wp + j + L]
                for q in range(L):
                    a[q] += dwide[q] * src[q]


@njit(cache=True, fastmath=False, inline="always")
def _accumulate_planes4(xpf, n, Wp, dwide4, acc, accb):
    """``_accumulate_plane`` for images n..n+3, one after the other in each sum (the same
    additions in the same order, so the same bits), with each partial sum loaded and stored
    once per four images instead of once per image: the loop is load/store-bound."""
    C, KH, KW, L = acc.shape
    d0, d1, d2, d3 = dwide4[0], dwide4[1], dwide4[2], dwide4[3]
    for q in range(L):
        accb[q] = (((accb[q] + d0[q]) + d1[q]) + d2[q]) + d3[q]
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                a = acc[c, i, j]
                o = i * Wp + j
                s0, s1 = xpf[n, c, o:o + L], xpf[n + 1, c, o:o + L]
                s2, s3 = xpf[n + 2, c, o:o + L], xpf[n + 3, c, o:o + L]
                for q in range(L):
                    a[q] = (((a[q] + d0[q] * s0[q]) + d1[q] * s1[q]) + d2[q] * s2[q]) + d3[q] * s3[q]


@njit(cache=True, fastmath=False, inline="always")
def _accumulate_images(xpf, n, k, Wp, dwide, acc, accb):
    """Images n..n+k-1 (k <= 4, their wide gradients in dwide[0..k)) into the sums, in order."""
    if k == 4:
        _accumulate_planes4(xpf, n, Wp, dwide, acc, accb)
    else:
        for e in range(k):
            _accumulate_plane(xpf, n + e, Wp, dwide[e], acc, accb)


@njit(cache=True, fastmath=False)
def _finish_dw(acc, accb, f, dw, db):
    C, KH, KW, L = acc.shape
    for c in range(C):
        for i in range(KH):
            for j in range(KW):
                a = acc[c, i, j]
                s = a[0]
                for q in range(1, L):
                    s += a[q]
                dw[f, c, i, j] = s
    s = accb[0]
    for q in range(1, L):
        s += accb[q]
    db[f] = s


@_jit
def direct_conv_backward_w(xpf, d, Wp, dw, db):
    """dw, db of the direct convolution from dout d: (N, F, H_out, W_out); dw: (F, C, KH, KW); db: (F,)."""
    N, F, H_out, W_out = d.shape
    C, KH, KW = dw.shape[1], dw.shape[2], dw.shape[3]
    L = H_out * Wp
    for f in prange(F):
        acc = np.zeros((C, KH, KW, L), dtype=dw.dtype)
        accb = np.zeros(L, dtype=dw.dtype)
        dwide = np.zeros((4, L), dtype=dw.dtype)  # the garbage columns stay 0
        for n in range(0, N, 4):
            k = min(4, N - n)
            for e in range(k):
                for oh in range(H_out):
                    dwide[e, oh * Wp:oh * Wp + W_out] = d[n + e, f, oh]
            _accumulate_images(xpf, n, k, Wp, dwide, acc, accb)
        _finish_dw(acc, accb, f, dw, db)


@_jit
def direct_conv_relu_maxpool_backward_w(xpf, dpool, pooled, argmax, Wp, H_out, W_out, dw, db):
    """dw, db of the fused block: each image's conv gradient (zero but at the windows' positive
    maxima) is built on the wide grid and accumulated exactly as ``direct_conv_backward_w``
    accumulates it (the same bits), without the full-size gradient array."""
    N, F, Hq, Wq = dpool.shape
    PH, PW = H_out // Hq, W_out // Wq
    C, KH, KW = dw.shape[1], dw.shape[2], dw.shape[3]
    L = H_out * Wp
    for f in prange(F):
        acc = np.zeros((C, KH, KW, L), dtype=dw.dtype)
        accb = np.zeros(L, dtype=dw.dtype)
        dwide = np.zeros((4, L), dtype=dw.dtype)
        for n in range(0, N, 4):
            k = min(4, N - n)
            for e in range(k):
                de = dwide[e]
                de[:] = 0
                for qh in range(Hq):
                    for qw in range(Wq):
                        if pooled[n + e, f, qh, qw] > 0:
                            a = argmax[n + e, f, qh, qw]
                            i = a // PW
                            de[(qh * PH + i) * Wp + qw * PW + a - i * PW] = dpool[n + e, f, qh, qw]
            _accumulate_images(xpf, n, k, Wp, dwide, acc, accb)
        _finish_dw(acc, accb, f, dw, db)


@_jit
def direct_conv_backward_x(d, w, Wp, ph, pw, dx):
    """dx of the direct convolution (stride 1): each tap adds ``w[f, c, i, j] * d[n, f]`` onto the
    shifted wide plane, over f, i, j in that order. d: (N, F, H_out, W_out); dx: (N, C, H, W)."""
    N, F, H_out, W_out = d.shape
    C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    H, W = dx.shape[2], dx.shape[3]
    L = H_out * Wp
    size = (H + 2 * ph) * Wp + KW - 1
    for n in prange(N):
        dwide = np.zeros((F, L), dtype=dx.dtype)
        for f in range(F):
            for oh in range(H_out):
                dwide[f, oh * Wp:oh * Wp + W_out] = d[n, f, oh]
        buf = np.empty(size, dtype=dx.dtype)
        for c in range(C):
            buf[:] = 0
            for f in range(F):
                df = dwide[f]
                for i in range(KH):
                    for j in range(KW):
                        wt = w[f, c, i, j]
                        dst = buf[i * Wp + j:i * Wp + j + L]
                        for q in range(L):
                            dst[q] += wt * df[q]
            for h in range(H):
                dx[n, c, h, :] = buf[(h + ph) * Wp + pw:(h + ph) * Wp + pw + W]


# ----- batch normalization, training (channels on axis 1) ---------------------------------------------------
# Sums run in float64 in a fixed order (four running sums per row, then a fixed combination),
# the same on every machine: four sums rather than one let the adds overlap (a single running
# sum waits ~4 cycles per element).
@njit(inline="always")
def _row_sums(a, b, shift):
    """``(sum(a - shift), sum((a - shift) * (b - shift)))`` in float64 (a, b: 1-D, equal length)."""
    s0 = s1 = s2 = s3 = 0.0
    q0 = q1 = q2 = q3 = 0.0
    L = a.shape[0]
    q = 0
    while q + 4 <= L:
        d0, d1, d2, d3 = a[q] - shift, a[q + 1] - shift, a[q + 2] - shift, a[q + 3] - shift
        s0 += d0
        s1 += d1
        s2 += d2
        s3 += d3
        q0 += d0 * (b[q] - shift)
        q1 += d1 * (b[q + 1] - shift)
        q2 += d2 * (b[q + 2] - shift)
        q3 += d3 * (b[q + 3] - shift)
        q += 4
    while q < L:
        d0 = a[q] - shift
        s0 += d0
        q0 += d0 * (b[q] - shift)
        q += 1
    return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)


@_jit
def batchnorm_forward_train(x, gamma, beta, eps, mean, var, xhat, out):
    """Batch statistics per channel, then ``xhat = (x - mean) / sqrt(var + eps)`` and
    ``out = gamma * xhat + beta``; ``var`` is the biased variance.

    Two passes over each channel for the statistics (the mean, then the squares of x - mean:
    no cancellation), float64 throughout, rounded once when written.
    x, xhat, out: (N, C, L), C-contiguous; gamma, beta: (C,); mean, var: (C,) float64.
    """
    N, C, L = x.shape
    m = N * L
    for c in prange(C):
        s = 0.0
        for n in range(N):
            s += _row_sums(x[n, c], x[n, c], 0.0)[0]
        mu = s / m
        ss = 0.0
        for n in range(N):
            ss += _row_sums(x[n, c], x[n, c], mu)[1]
        v = ss / m
        mean[c] = mu
        var[c] = v
        inv_std = 1.0 / np.sqrt(v + eps)
        g, b = np.float64(gamma[c]), np.float64(beta[c])
        for n in range(N):
            src, dh, do = x[n, c], xhat[n, c], out[n, c]
            for q in range(L):
                h = (np.float64(src[q]) - mu) * inv_std
                dh[q] = h
                do[q] = g * h + b


@_jit
def batchnorm_backward_train(dout, xhat, scale, dgamma, dbeta, dx):
    """``dbeta = sum(dout)``, ``dgamma = sum(dout * xhat)`` per channel, and
    ``dx = scale * (dout - dbeta / m - xhat * dgamma / m)`` with ``scale = gamma / sqrt(var + eps)``.

    dout, xhat, dx: (N, C, L), C-contiguous; scale, dgamma, dbeta: (C,).
    """
    N, C, L = dout.shape
    m = N * L
    for c in prange(C):
        sb = sg = 0.0
        for n in range(N):
            b, g = _row_sums(dout[n, c], xhat[n, c], 0.0)  # sum(dout), sum(dout * xhat); - 0.0 is exact
            sb += b
            sg += g
        dbeta[c] = sb
        dgamma[c] = sg
        k, mb, mg = np.float64(scale[c]), sb / m, sg / m
        for n in range(N):
            d, h, out = dout[n, c], xhat[n, c], dx[n, c]
            for q in range(L):
                out[q] = k * ((np.float64(d[q]) - mb) - np.float64(h[q]) * mg)


# ----- optimizer steps (cnnlab.training.optim) ------------------------------------------------------
# One pass over a parameter instead of NumPy's 10-13 (each reading and writing whole arrays,
# on one core). Every scalar arrives in the parameter's dtype (the caller casts it), so each
# operation rounds as NumPy's ufunc on (array, Python float) does under NumPy 2's promotion
# rules, in the same order: the same bits as the NumPy path (tested). ``error_model="numpy"``:
# a division by zero gives inf/NaN as in NumPy instead of raising (and keeps the loop vectorized).
_jit_np = njit(parallel=True, cache=True, fastmath=False, nogil=True, error_model="numpy")
_jit_serial = njit(cache=True, fastmath=False, nogil=True, error_model="numpy")


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _adam_one(p, g, m, v, i, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step_size, wd, decoupled, shrink):
    pi = p[i]
    gi = g[i]
    if decoupled:
        pi = pi * shrink
    elif wd != 0:
        gi = gi + wd * pi
    mi = m[i]
    mi = mi + (gi - mi) * one_minus_beta1
    m[i] = mi
    vi = v[i] * beta2 + (gi * one_minus_beta2) * gi
    v[i] = vi
    p[i] = pi - (mi / (np.sqrt(vi) / sqrt_bc2 + eps)) * step_size


@_jit_np
def adam_step(p, g, m, v, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step_size, wd, decoupled, shrink):
    """Adam / AdamW in place, as ``Adam._update``'s NumPy operations, element by element::

        p = p * shrink (decoupled) | g = g + wd * p (wd != 0, not decoupled)
        m = m + (g - m) * (1 - beta1);  v = v * beta2 + (g * (1 - beta2)) * g
        p = p - (m / (sqrt(v) / sqrt_bc2 + eps)) * step_size

    p, g, m, v: 1-D, one length and dtype; the scalars in that dtype.
    """
    for i in prange(p.shape[0]):
        _adam_one(p, g, m, v, i, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step_size, wd, decoupled,
                  shrink)


@_jit_serial
def adam_step_serial(p, g, m, v, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step_size, wd, decoupled,
                     shrink):
    """``adam_step`` on the calling thread alone (the same bits): for a parameter too small to
    pay for waking the other threads, which sleep between kernels (20-70 us measured)."""
    for i in range(p.shape[0]):
        _adam_one(p, g, m, v, i, one_minus_beta1, beta2, one_minus_beta2, sqrt_bc2, eps, step_size, wd, decoupled,
                  shrink)


@njit(cache=True, fastmath=False, error_model="numpy", inline="always")
def _sgd_one(p, g, buf, i, lr, momentum, wd, nesterov, first):
    pi = p[i]
    gi = g[i]
    if wd != 0:
        gi = gi + wd * pi
    if momentum != 0:
        b = gi if first else buf[i] * momentum + gi
        buf[i] = b
        gi = gi + momentum * b if nesterov else b
    p[i] = pi - lr * gi


@_jit_np
def sgd_step(p, g, buf, lr, momentum, wd, nesterov, first):
    """SGD in place, as ``SGD._update``'s NumPy operations, element by element::

        g = g + wd * p (wd != 0)
        buf = g (first) | buf = buf * momentum + g;  g = g + momentum * buf (nesterov) | buf
        p = p - lr * g

    p, g, buf: 1-D, one length and dtype (buf unused when momentum == 0); scalars in that dtype.
    """
    for i in prange(p.shape[0]):
        _sgd_one(p, g, buf, i, lr, momentum, wd, nesterov, first)


@_jit_serial
def sgd_step_serial(p, g, buf, lr, momentum, wd, nesterov, first):
    """``sgd_step`` on the calling thread alone (the same bits), for small parameters."""
    for i in range(p.shape[0]):
        _sgd_one(p, g, buf, i, lr, momentum, wd, nesterov, first)


# ----- Winograd F(2x2, 3x3): 3x3 convolution, stride 1, padding 1, even H and W ------------------------------
# Each output tile of 2x2 comes from a 4x4 input patch d (rows 2*ty-1 .. 2*ty+2, zero outside x):
#   y = A^T [ (G g G^T) * (B^T d B) ] A     (* elementwise; 16 products instead of 36)
#   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
#   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
# Summed over the input channels, the 16 products of each tile position k = 4*row + col are 16
# matrix products (``cnnlab.engines.winograd``); these kernels are the transforms around them.
# Layout: V (16, C, N*T), M (16, F, N*T), T = (H/2)*(W/2) tiles per image, tile t = ty*(W/2) + tx.
@njit(cache=True, fastmath=False, inline="always")
def _bt4(a0, a1, a2, a3):
    """B^T applied to a 4-vector."""
    return a0 - a2, a1 + a2, a2 - a1, a1 - a3


@njit(cache=True, fastmath=False, inline="always")
def _at4(a0, a1, a2, a3):
    """A^T applied to a 4-vector (2 results)."""
    return (a0 + a1) + a2, (a1 - a2) - a3


@njit(cache=True, fastmath=False, inline="always")
def _a2(y0, y1):
    """A applied to a 2-vector (the transpose of ``_at4``; 4 results)."""
    return y0, y0 + y1, y0 - y1, -y1


@njit(cache=True, fastmath=False, inline="always")
def _b4(a0, a1, a2, a3):
    """B applied to a 4-vector (the transpose of ``_bt4``)."""
    return a0, (a1 - a2) + a3, (a1 + a2) - a0, -a3


@_jit
def wino_input(x, V):
    """V[k, c, n*T + t] = (B^T d B)[k] of tile t's 4x4 input patch d (zeros outside x).

    x: (N, C, H, W), H and W even; V: (16, C, N*T), T = H*W/4. A task takes a channel of a few
    images; per image it reads four zero-padded input rows per row of tiles and writes its 16
    rows of V contiguously.
    """
    N, C, H, W = x.shape
    TH, TW = H // 2, W // 2
    T = TH * TW
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(C * blocks):
        c = task // blocks
        n0 = (task - c * blocks) * NB
        rows = np.zeros((4, W + 2), dtype=x.dtype)  # rows[i, 1 + w] = x[2*ty - 1 + i, w]; the borders stay 0
        loc = np.empty((16, T + 16), dtype=x.dtype)  # rows 4 KB apart would share L1 sets
        for n in range(n0, min(N, n0 + NB)):
            _wino_input_plane(x[n, c], rows, loc)
            _wino_rows_out(loc, V, c, n, T)


@njit(cache=True, fastmath=False, inline="always")
def _wino_rows_in(A, ch, n, T, loc):
    """loc[k, :T] = A[k, ch, n*T:(n+1)*T] for the 16 positions k: one image's tiles of V, M or their gradients."""
    for k in range(16):
        src = A[k, ch, n * T:(n + 1) * T]
        dst = loc[k]
        for t in range(T):
            dst[t] = src[t]


@njit(cache=True, fastmath=False, inline="always")
def _wino_rows_out(loc, A, ch, n, T):
    """A[k, ch, n*T:(n+1)*T] = loc[k, :T]: the inverse of ``_wino_rows_in``."""
    for k in range(16):
        dst = A[k, ch, n * T:(n + 1) * T]
        src = loc[k]
        for t in range(T):
            dst[t] = src[t]


@njit(cache=True, fastmath=False, inline="always")
def _wino_images_per_task(T):
    """Images per task of the Winograd kernels: each of a task's 16 rows of V or M then runs
    for >= 512 values in a row (short runs of 16 rows at once defeat the prefetcher: measured
    2-3x slower with one image of 49 tiles per task)."""
    return max(1, 512 // T)


@njit(cache=True, fastmath=False, inline="always")
def _wino_input_plane(xs, rows, loc):
    """loc[k, t] = (B^T d B)[k] of each tile of the plane xs (H, W); rows: (4, W + 2) scratch, borders 0."""
    H, W = xs.shape
    TH, TW = H // 2, W // 2
    for ty in range(TH):
        for i in range(4):
            h = 2 * ty - 1 + i
            r = rows[i, 1:W + 1]
            if 0 <= h < H:
                src = xs[h]
                for w in range(W):
                    r[w] = src[w]
            else:
                r[:] = 0
        r0, r1, r2, r3 = rows[0], rows[1], rows[2], rows[3]
        for tx in range(TW):
            j = 2 * tx
            t = ty * TW + tx
            # B^T d, column by column
            a00, a10, a20, a30 = _bt4(r0[j], r1[j], r2[j], r3[j])
            a01, a11, a21, a31 = _bt4(r0[j + 1], r1[j + 1], r2[j + 1], r3[j + 1])
            a02, a12, a22, a32 = _bt4(r0[j + 2], r1[j + 2], r2[j + 2], r3[j + 2])
            a03, a13, a23, a33 = _bt4(r0[j + 3], r1[j + 3], r2[j + 3], r3[j + 3])
            # (B^T d) B, row by row
            loc[0, t], loc[1, t], loc[2, t], loc[3, t] = _bt4(a00, a01, a02, a03)
            loc[4, t], loc[5, t], loc[6, t], loc[7, t] = _bt4(a10, a11, a12, a13)
            loc[8, t], loc[9, t], loc[10, t], loc[11, t] = _bt4(a20, a21, a22, a23)
            loc[12, t], loc[13, t], loc[14, t], loc[15, t] = _bt4(a30, a31, a32, a33)


@njit(cache=True, fastmath=False, inline="always")
def _wino_plane(M, f, n, TH, TW, loc, y):
    """y = the (H, W) plane of filter f, image n from the 16 products M (no bias); loc: (16, T) scratch."""
    _wino_rows_in(M, f, n, TH * TW, loc)
    for ty in range(TH):
        y0, y1 = y[2 * ty], y[2 * ty + 1]
        for tx in range(TW):
            t = ty * TW + tx
            # A^T m, column by column (2 rows)
            b00, b10 = _at4(loc[0, t], loc[4, t], loc[8, t], loc[12, t])
            b01, b11 = _at4(loc[1, t], loc[5, t], loc[9, t], loc[13, t])
            b02, b12 = _at4(loc[2, t], loc[6, t], loc[10, t], loc[14, t])
            b03, b13 = _at4(loc[3, t], loc[7, t], loc[11, t], loc[15, t])
            # (A^T m) A, row by row
            y0[2 * tx], y0[2 * tx + 1] = _at4(b00, b01, b02, b03)
            y1[2 * tx], y1[2 * tx + 1] = _at4(b10, b11, b12, b13)


@_jit
def wino_output(M, b, out):
    """out[n, f] = the output transform of M, plus b[f]. out: (N, F, H, W); M: (16, F, N*T); b: (F,)."""
    N, F, H, W = out.shape
    T = H * W // 4
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(F * blocks):
        f = task // blocks
        n0 = (task - f * blocks) * NB
        y = np.empty((H, W), dtype=out.dtype)
        loc = np.empty((16, T + 16), dtype=out.dtype)  # rows 4 KB apart would share L1 sets
        bf = b[f]
        for n in range(n0, min(N, n0 + NB)):
            _wino_plane(M, f, n, H // 2, W // 2, loc, y)
            o = out[n, f].reshape(H * W)
            yf = y.reshape(H * W)
            for q in range(H * W):
                o[q] = yf[q] + bf


@_jit
def wino_output_relu_maxpool(M, b, zero, pooled, argmax):
    """pooled, argmax = maxpool2x2(relu(output transform of M + b)), the bias, ReLU and pool of
    ``g_bias_relu_maxpool`` on each plane (the same adds and tie rule: the same bits as
    ``wino_output`` followed by the ReLU and pooling ops). pooled, argmax: (N, F, H/2, W/2)."""
    N, F, Hq, Wq = pooled.shape
    H, W = 2 * Hq, 2 * Wq
    T = Hq * Wq
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(F * blocks):
        f = task // blocks
        n0 = (task - f * blocks) * NB
        y = np.empty((H, W), dtype=pooled.dtype)
        loc = np.empty((16, T + 16), dtype=pooled.dtype)  # rows 4 KB apart would share L1 sets
        for n in range(n0, min(N, n0 + NB)):
            _wino_plane(M, f, n, Hq, Wq, loc, y)
            _bias_relu_pool_plane(y.reshape(H * W), W, 2, 2, b[f], zero, pooled[n, f], argmax[n, f])


@njit(cache=True, fastmath=False, inline="always")
def _wino_grad_plane(dy, f, n, TH, TW, loc, dM):
    """dM[k, f, n*T + t] = (A dY A^T)[k] of each 2x2 tile of the gradient plane dy (H, W); loc: (16, T) scratch."""
    for ty in range(TH):
        d0, d1 = dy[2 * ty], dy[2 * ty + 1]
        for tx in range(TW):
            t = ty * TW + tx
            # A dY: 4x2, then (A dY) A^T: 4x4
            c00, c10, c20, c30 = _a2(d0[2 * tx], d1[2 * tx])
            c01, c11, c21, c31 = _a2(d0[2 * tx + 1], d1[2 * tx + 1])
            loc[0, t], loc[1, t], loc[2, t], loc[3, t] = _a2(c00, c01)
            loc[4, t], loc[5, t], loc[6, t], loc[7, t] = _a2(c10, c11)
            loc[8, t], loc[9, t], loc[10, t], loc[11, t] = _a2(c20, c21)
            loc[12, t], loc[13, t], loc[14, t], loc[15, t] = _a2(c30, c31)
    _wino_rows_out(loc, dM, f, n, TH * TW)


@_jit
def wino_grad_output(dout, dM, sums):
    """dM = the transpose of the output transform applied to dout, and each plane's sum for the
    bias gradient (``_plane_sum``, float64). dout: (N, F, H, W); dM: (16, F, N*T); sums: (F, N)."""
    N, F, H, W = dout.shape
    T = H * W // 4
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(F * blocks):
        f = task // blocks
        n0 = (task - f * blocks) * NB
        loc = np.empty((16, T + 16), dtype=dM.dtype)  # rows 4 KB apart would share L1 sets
        for n in range(n0, min(N, n0 + NB)):
            _wino_grad_plane(dout[n, f], f, n, H // 2, W // 2, loc, dM)
            sums[f, n] = _plane_sum(dout[n, f].reshape(H * W))


@_jit
def wino_grad_output_maxpool_relu(dpool, pooled, argmax, dM, sums):
    """``wino_grad_output`` of the conv gradient behind ReLU + 2x2 max pooling: each window's
    gradient at its maximum where that maximum was positive, zero elsewhere (the plane that
    ``maxpool_relu_backward_to_g`` builds), kept in cache rather than written to memory.
    dpool, pooled, argmax: (N, F, H/2, W/2)."""
    N, F, Hq, Wq = dpool.shape
    H, W = 2 * Hq, 2 * Wq
    T = Hq * Wq
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(F * blocks):
        f = task // blocks
        n0 = (task - f * blocks) * NB
        loc = np.empty((16, T + 16), dtype=dM.dtype)  # rows 4 KB apart would share L1 sets
        dy = np.empty((H, W), dtype=dpool.dtype)
        for n in range(n0, min(N, n0 + NB)):
            dy[:] = 0
            for qh in range(Hq):
                for qw in range(Wq):
                    a = argmax[n, f, qh, qw]
                    i = a // 2
                    dy[2 * qh + i, 2 * qw + a - 2 * i] = dpool[n, f, qh, qw] if pooled[n, f, qh, qw] > 0 else 0
            _wino_grad_plane(dy, f, n, Hq, Wq, loc, dM)
            sums[f, n] = _plane_sum(dy.reshape(H * W))


@_jit
def wino_grad_input(dV, dx):
    """dx = the transpose of the input transform: each tile's B dV B^T added onto its 4x4
    patch (tiles in order, rows then columns; what falls outside x dropped).
    dV: (16, C, N*T); dx: (N, C, H, W)."""
    N, C, H, W = dx.shape
    TH, TW = H // 2, W // 2
    T = TH * TW
    NB = _wino_images_per_task(T)
    blocks = (N + NB - 1) // NB
    for task in prange(C * blocks):
        c = task // blocks
        n0 = (task - c * blocks) * NB
        loc = np.empty((16, T + 16), dtype=dx.dtype)  # rows 4 KB apart would share L1 sets
        pad = np.empty((H + 2, W + 2), dtype=dx.dtype)  # pad[1 + h, 1 + w] = dx[n, c, h, w]
        for n in range(n0, min(N, n0 + NB)):
            _wino_rows_in(dV, c, n, T, loc)
            pad[:] = 0
            _wino_grad_input_plane(loc, TH, TW, pad)
            d = dx[n, c]
            for h in range(H):
                src = pad[h + 1, 1:W + 1]
                dst = d[h]
                for w in range(W):
                    dst[w] = src[w]


@njit(cache=True, fastmath=False, inline="always")
def _wino_grad_input_plane(loc, TH, TW, pad):
    """pad += each tile's B dV B^T on its 4x4 patch (tiles in order); loc: (16, T) the tiles' dV."""
    for ty in range(TH):
        p0, p1, p2, p3 = pad[2 * ty], pad[2 * ty + 1], pad[2 * ty + 2], pad[2 * ty + 3]
        for tx in range(TW):
            t = ty * TW + tx
            # dV B^T, row by row
            e00, e01, e02, e03 = _b4(loc[0, t], loc[1, t], loc[2, t], loc[3, t])
            e10, e11, e12, e13 = _b4(loc[4, t], loc[5, t], loc[6, t], loc[7, t])
            e20, e21, e22, e23 = _b4(loc[8, t], loc[9, t], loc[10, t], loc[11, t])
            e30, e31, e32, e33 = _b4(loc[12, t], loc[13, t], loc[14, t], loc[15, t])
            j = 2 * tx
            # B (dV B^T), column by column, added onto the patch
            q0, q1, q2, q3 = _b4(e00, e10, e20, e30)
            p0[j] += q0
            p1[j] += q1
            p2[j] += q2
            p3[j] += q3
            q0, q1, q2, q3 = _b4(e01, e11, e21, e31)
            p0[j + 1] += q0
            p1[j + 1] += q1
            p2[j + 1] += q2
            p3[j + 1] += q3
            q0, q1, q2, q3 = _b4(e02, e12, e22, e32)
            p0[j + 2] += q0
            p1[j + 2] += q1
            p2[j + 2] += q2
            p3[j + 2] += q3
            q0, q1, q2, q3 = _b4(e03, e13, e23, e33)
            p0[j + 3] += q0
            p1[j + 3] += q1
            p2[j + 3] += q2
            p3[j + 3] += q3
