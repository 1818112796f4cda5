"""Inverted dropout: zero each unit with probability ``p`` in training and scale the survivors
by ``1 / (1 - p)``, so the expected output equals the input and inference is the identity.

Example:
    >>> rng = np.random.default_rng(0)
    >>> out, cache = dropout_forward(np.ones(8), 0.5, rng, training=True)
    >>> sorted(set(out.tolist()))  # each unit is dropped (0) or scaled by 1 / (1 - 0.5)
    [0.0, 2.0]
    >>> dropout_forward(np.ones(3), 0.5, rng, training=False)[0].tolist()
    [1.0, 1.0, 1.0]
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_real


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator, training: bool
) -> tuple[np.ndarray, tuple | None]:
    """Inverted dropout.

    Args:
        x: input, any shape.
        p: probability of DROPPING each unit (PyTorch's meaning), in [0, 1).
        rng: source of the mask; the only randomness used.
        training: drop units (True) or return ``x`` itself (False).

    Returns:
        ``(out, cache)``; the cache is ``(keep_mask, scale)`` with a boolean mask, or None when
        nothing was dropped (inference or p == 0), in which case ``out`` is ``x`` itself.

    Shape:
        x, out: (*), the same shape.
    """
    p = check_real(p, "dropout probability p", 0.0, 1.0, high_inclusive=False)
    if not training or p == 0.0:
        return x, None
    keep = rng.random(x.shape, dtype=x.dtype) >= x.dtype.type(p)  # P(keep) = 1 - p
    scale = x.dtype.type(1.0 / (1.0 - p))
    out = x * keep  # multiply by the mask, not np.where: several times faster
    out *= scale
    return out, (keep, scale)


def dropout_backward(dout: np.ndarray, cache: tuple | None) -> np.ndarray:
    """Gradient of dropout: ``dout`` through the same mask and scale (``dout`` itself when the
    forward pass was the identity)."""
    if cache is None:
        return dout
    keep, scale = cache
    dx = dout * keep
    dx *= scale
    return dx
