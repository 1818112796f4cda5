"""Fully connected (affine) layer as a pure op: ``out = x @ w + b``.

``w`` is (in_features, out_features), the layout of the tutorials and Keras; it is the
transpose of ``torch.nn.Linear.weight``.

Example:
    >>> x, w, b = np.ones((2, 3)), np.ones((3, 4)), np.zeros(4)
    >>> out, cache = dense_forward(x, w, b)
    >>> out.shape
    (2, 4)
    >>> [g.shape for g in dense_backward(np.ones((2, 4)), cache)]
    [(2, 3), (3, 4), (4,)]
"""
from __future__ import annotations

import numpy as np


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, tuple]:
    """Affine map ``x @ w + b``.

    Args:
        x: inputs.
        w: weights.
        b: bias, or None for no bias.

    Returns:
        ``(out, cache)`` with cache ``(x, w, has_bias)``.

    Shape:
        x: (N, D_in). w: (D_in, D_out). b: (D_out,). out: (N, D_out).
    """
    out = x @ w
    if b is not None:
        out += b
    return out, (x, w, b is not None)


def dense_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of ``x @ w + b``.

    Returns:
        ``(dx, dw, db)``; ``db`` is None when the forward pass had no bias.

    Shape:
        dout: (N, D_out). dx: (N, D_in). dw: (D_in, D_out). db: (D_out,).
    """
    x, w, has_bias = cache
    dx = dout @ w.T  # (N, D_out) @ (D_out, D_in)
    dw = x.T @ dout  # (D_in, N) @ (N, D_out)
    db = dout.sum(axis=0) if has_bias else None
    return dx, dw, db
