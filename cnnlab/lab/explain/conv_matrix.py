"""A convolution as multiplication by a sparse (Toeplitz) matrix, checked against ``cnnlab.ops.conv``."""
from __future__ import annotations

import numpy as np

from cnnlab.ops.shapes import conv_output_size, to_pair


def _conv_matrix_index(kh: int, kw: int, input_shape, stride, padding) -> np.ndarray:
    h, w = (int(d) for d in input_shape)
    sh, sw = to_pair(stride, "stride")
    ph, pw = to_pair(padding, "padding", minimum=0)
    h_out = conv_output_size(h, kh, sh, ph)
    w_out = conv_output_size(w, kw, sw, pw)
    index = np.full((h_out * w_out, h * w), -1, dtype=np.int64)  # (H_out*W_out, H*W)
    # Row r = (oi, oj) is the window at (oi*sh - ph, oj*sw - pw); entry (u, v) of the kernel
    # multiplies input pixel (oi*sh - ph + u, oj*sw - pw + v), unless that pixel is padding.
    oi, oj, u, v = np.meshgrid(np.arange(h_out), np.arange(w_out), np.arange(kh), np.arange(kw), indexing="ij")
    r, c = oi * sh - ph + u, oj * sw - pw + v
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    rows = (oi * w_out + oj)[inside]
    cols = (r * w + c)[inside]
    index[rows, cols] = (u * kw + v)[inside]
    return index


def conv_matrix(kernel, input_shape, stride=1, padding=0, *, return_index: bool = False):
    """The sparse (doubly block Toeplitz) matrix of a single-channel convolution.

    Row ``r`` of ``M`` holds the kernel's weights at the columns of the input pixels the
    ``r``-th window covers, zeros elsewhere, so that::

        M @ x.ravel() == conv(x).ravel()        (forward)
        M.T @ dout.ravel() == dx.ravel()        (backward: the transpose spreads gradients)

    Every row reuses the same ``KH*KW`` numbers (weight sharing) and most entries are zero
    (sparsity). cnnlab's convolution, like PyTorch's, is a cross-correlation (no kernel flip).

    Args:
        kernel: 2-D filter.
        input_shape: (H, W) of the input image.
        stride: int or pair.
        padding: int or pair (zeros on each side).
        return_index: also return the matrix of kernel-entry indices (``u*KW + v``; -1 for
            structural zeros), which shows the weight sharing.

    Returns:
        ``M`` (dense NumPy array of the kernel's dtype), or ``(M, index)``.

    Shape:
        kernel: (KH, KW). M, index: (H_out*W_out, H*W).

    Example:
        >>> M = conv_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]), (3, 3))
        >>> M.shape
        (4, 9)
        >>> M[0].tolist()
        [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"conv_matrix expected a 2-D kernel (KH, KW); received shape {kernel.shape}.")
    if len(tuple(input_shape)) != 2:
        raise ValueError(f"conv_matrix expected input_shape (H, W); received {tuple(input_shape)}.")
    dtype = kernel.dtype if np.issubdtype(kernel.dtype, np.floating) else np.dtype(np.float64)
    index = _conv_matrix_index(kernel.shape[0], kernel.shape[1], input_shape, stride, padding)
    M = np.zeros(index.shape, dtype=dtype)  # (H_out*W_out, H*W)
    used = index >= 0
    M[used] = kernel.reshape(-1)[index[used]]  # (KH*KW,) weights gathered into the slots
    return (M, index) if return_index else M


def conv_matrix_triplets(kernel, input_shape, stride=1, padding=0):
    """The convolution matrix in coordinate form, without forming the dense matrix's zeros.

    Returns:
        ``(rows, cols, vals, shape)`` with ``M[rows[t], cols[t]] = vals[t]``; every kernel
        weight appears once per window that covers a real (non-padding) pixel.

    Example:
        >>> rows, cols, vals, shape = conv_matrix_triplets(np.ones((3, 3)), (5, 5))
        >>> shape, len(vals)
        ((9, 25), 81)
    """
    kernel = np.asarray(kernel)
    if not np.issubdtype(kernel.dtype, np.floating):
        kernel = kernel.astype(np.float64)
    index = _conv_matrix_index(kernel.shape[0], kernel.shape[1], input_shape, stride, padding)
    rows, cols = np.nonzero(index >= 0)
    return rows, cols, kernel.reshape(-1)[index[rows, cols]], index.shape  # vals: (nnz,)
