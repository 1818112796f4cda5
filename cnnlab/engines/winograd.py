"""Winograd's F(2x2, 3x3) convolution for the Numba engine: 3x3 filters, stride 1, padding 1.

A 3x3 convolution computes each 2x2 tile of its output from a 4x4 patch of its input. In
Winograd's transformed space that is 16 products per tile and channel instead of 36
(Lavin & Gray, 2016)::

    y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise; g: 3x3 filter, d: 4x4 patch)

Summed over the input channels, position k (of 16) of every tile is one matrix product, so
the whole layer is 16 products of (F, C) @ (C, N*T) (T = H*W/4 tiles per image): 2.25x fewer
multiply-adds than im2col's (F, 9C) @ (9C, N*H*W), with no 9x copy of the input. The
transforms around the products are compiled passes (``numba_kernels.wino_*``); the backward
runs the transposes of the same linear maps (``dV = U^T dM``, ``dU = dM V^T``, ``dg = G^T dU G``).

Numbers: the transforms only add, subtract and halve, so the results equal the other paths'
to float rounding (tested against the reference loops, NumPy and PyTorch), not bit for bit;
the fused Conv -> ReLU -> MaxPool runs the same arithmetic as this plain convolution, so
fusing still changes no bit.

Shapes:
    x: (N, C, H, W), H and W even. g / w: (F, C, 3, 3). V: (16, C, N*T). U: (16, F, C).
    M = U @ V: (16, F, N*T). out: (N, F, H, W).
"""
from __future__ import annotations

import numpy as np

from cnnlab.engines import runtime

__all__ = ["G", "CHUNK_BYTES", "MIN_CHANNELS", "applies", "chunks", "WinogradKept", "filter_transform", "filter_gradient",
           "forward", "backward"]

#: the filter transform of F(2x2, 3x3): U = G g G^T
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
#: bytes of transformed input and products (V and M) per chunk of images; a batch that fits in
#: one chunk keeps its V for the backward, a larger one transforms each chunk again there
CHUNK_BYTES = 32 << 20


#: fewer input channels than this: the GEMM path. The 16 products' inner dimension is C, and
#: with few channels they run well below the BLAS's speed where the GEMM path's 9*C does not.
#: Measured (2 threads, batch 64; BENCHMARKS.md): 16 channels (bn_cnn's 16->32 @14) 5.6 ms by
#: Winograd, 3.8 by GEMMs; 32 (simple_cnn's conv2 + ReLU + pool) 11.9 against 13.3 alone, but
#: no faster over a training epoch, with 23 MB more peak memory; 64 (the RGB block's 64->64
#: at 32 and 64 px, batch 16) 13-18% and 7-15% faster
MIN_CHANNELS = 64


def applies(x_shape, w_shape, stride, padding) -> bool:
    """Whether a convolution is Winograd's F(2x2, 3x3) case: 3x3, stride 1, padding 1, even H and W,
    at least :data:`MIN_CHANNELS` input channels."""
    C, H, W = x_shape[1:]
    if tuple(w_shape[2:]) != (3, 3) or tuple(stride) != (1, 1) or tuple(padding) != (1, 1):
        return False
    return H % 2 == 0 and W % 2 == 0 and C >= MIN_CHANNELS


def chunks(x_shape, F: int, itemsize: int) -> list[slice]:
    """Slices of the batch whose V and M take about :data:`CHUNK_BYTES` (at least one image each)."""
    N, C, H, W = x_shape
    per_image = 16 * (C + F) * (H * W // 4) * itemsize
    nb = max(1, CHUNK_BYTES // per_image)
    return [slice(s, min(s + nb, N)) for s in range(0, N, nb)]


class WinogradKept:
    """The forward's transformed input V, held for one backward (which needs it for dW); the
    backward takes it once and a second backward transforms x again (same bits)."""

    __slots__ = ("V",)

    def __init__(self, V: np.ndarray):
        self.V = V

    def take(self) -> np.ndarray | None:
        V, self.V = self.V, None
        return V


def _kron(dtype) -> np.ndarray:
    """(9, 16): row 3*i' + j', column 4*i + j holds G[i, i'] * G[j, j'] (both transforms are one GEMM)."""
    return np.einsum("ai,bj->ijab", G, G).reshape(9, 16).astype(dtype)


def filter_transform(w: np.ndarray) -> np.ndarray:
    """U[4*i + j, f, c] = (G w[f, c] G^T)[i, j]. w: (F, C, 3, 3) -> U: (16, F, C), w's dtype."""
    F, C = w.shape[:2]
    return np.ascontiguousarray((w.reshape(F * C, 9) @ _kron(w.dtype)).T).reshape(16, F, C)


def filter_gradient(dU: np.ndarray) -> np.ndarray:
    """dw = G^T dU G per (f, c): the transpose of :func:`filter_transform`. (16, F, C) -> (F, C, 3, 3)."""
    F, C = dU.shape[1:]
    return np.ascontiguousarray(dU.reshape(16, F * C).T @ _kron(dU.dtype).T).reshape(F, C, 3, 3)


def _input_transform(x: np.ndarray) -> np.ndarray:
    N, C, H, W = x.shape
    V = np.empty((16, C, N * (H * W // 4)), dtype=x.dtype)  # (16, C, N*T)
    runtime.kernels().wino_input(np.ascontiguousarray(x), V)
    return V


def forward(x: np.ndarray, w: np.ndarray, finish) -> WinogradKept | None:
    """``finish(M, sl)`` with the 16 products ``M = U @ V`` (16, F, n*T) of each chunk ``sl`` of
    images; returns the kept V when the batch ran as one chunk, else None."""
    U = filter_transform(w)
    parts = chunks(x.shape, w.shape[0], x.itemsize)
    V = None
    for sl in parts:
        V = _input_transform(x[sl])
        finish(np.matmul(U, V), sl)
    return WinogradKept(V) if len(parts) == 1 else None


def backward(x: np.ndarray, w: np.ndarray, make_dM, need_dx: bool, use_bias: bool, kept: WinogradKept | None):
    """``(dx, dw, db)`` from ``make_dM(sl, dM, sums)``, which writes chunk ``sl``'s transformed
    output gradient dM (16, F, n*T) and each of its planes' gradient sums (F, n) in float64.

    Chunks add up in order (dU = (dU_0 + dU_1) + ...), so every caller gets the same bits.
    """
    N, C, H, W = x.shape
    F = w.shape[0]
    parts = chunks(x.shape, F, x.itemsize)
    V = kept.take() if kept is not None and len(parts) == 1 else None
    U_T = filter_transform(w).transpose(0, 2, 1) if need_dx else None  # (16, C, F)
    dx = np.empty(x.shape, dtype=x.dtype) if need_dx else None
    dU, db = None, np.zeros(F, dtype=np.float64)
    for sl in parts:
        n = sl.stop - sl.start
        if V is None:  # not kept, or the next chunk
            V = _input_transform(x[sl])
        dM = np.empty((16, F, n * (H * W // 4)), dtype=x.dtype)
        sums = np.empty((F, n), dtype=np.float64)
        make_dM(sl, dM, sums)
        db += sums.sum(axis=1)
        part = np.matmul(dM, V.transpose(0, 2, 1))  # (16, F, C)
        dU = part if dU is None else dU + part
        if need_dx:
            dV = np.matmul(U_T, dM, out=V)  # (16, C, n*T): V is spent
            runtime.kernels().wino_grad_input(dV, dx[sl])
        V = None
    return dx, filter_gradient(dU), (db.astype(x.dtype) if use_bias else None)
