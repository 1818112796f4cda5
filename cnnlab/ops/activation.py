"""Elementwise activations as forward/backward pairs, plus a numerically stable softmax.

Each pair keeps the smallest cache that its backward needs: ReLU a boolean mask (1 byte per
element), sigmoid and tanh their output (the derivative is a function of it). Every function
returns the dtype it was given: constants are cast with ``x.dtype.type(c)`` so that a float32
array is never upcast by a float64 scalar.

Example:
    >>> x = np.array([-2.0, 0.5, 3.0])
    >>> out, cache = relu_forward(x)
    >>> out.tolist()
    [0.0, 0.5, 3.0]
    >>> relu_backward(np.ones(3), cache).tolist()
    [0.0, 1.0, 1.0]
"""
from __future__ import annotations

import numpy as np


# ----- ReLU ----------------------------------------------------------------------------
def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(x, 0)`` elementwise.

    The Numba engine (``cnnlab.engines``) writes the output and the mask in one parallel pass.

    Args:
        x: input, any shape.

    Returns:
        ``(out, cache)``; the cache is the boolean mask ``x > 0``.

    Shape:
        x, out, cache: (*), the same shape.
    """
    return np.maximum(x, 0), x > 0  # maximum, not x * mask: -inf * 0 would be NaN


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of ReLU: ``dout`` where the input was positive, 0 elsewhere (0 at x == 0, as PyTorch).

    Shape:
        dout, cache, dx: (*), the same shape.
    """
    return dout * cache


# ----- Leaky ReLU ----------------------------------------------------------------------
def leaky_relu_forward(x: np.ndarray, negative_slope: float = 0.01) -> tuple[np.ndarray, tuple]:
    """``x`` where positive, ``negative_slope * x`` elsewhere.

    Returns:
        ``(out, cache)``; the cache is ``(mask, negative_slope)`` with mask ``x > 0``.

    Shape:
        x, out: (*), the same shape.
    """
    slope = x.dtype.type(negative_slope)
    # max(x, slope*x) picks x for x > 0 when slope <= 1 (min when slope > 1); no np.where (slow)
    out = np.maximum(x, x * slope) if slope <= 1 else np.minimum(x, x * slope)
    return out, (x > 0, slope)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of leaky ReLU: ``dout`` where x > 0, ``negative_slope * dout`` elsewhere."""
    mask, slope = cache
    slope = dout.dtype.type(slope)
    if 0 <= slope <= 1:
        return dout * np.maximum(mask, slope)  # factor 1 where x > 0, slope elsewhere; exact
    return np.where(mask, dout, dout * slope)


# ----- sigmoid and tanh ----------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow, with full relative precision for large ``|x|``.

    With ``z = exp(-|x|)`` (never overflows) it is ``1 / (1 + z)`` for x >= 0 and the
    algebraically equal ``z / (1 + z)`` for x < 0, which keeps tiny outputs exact instead of
    rounding ``1 - 1`` to 0.

    Example:
        >>> sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist()
        [0.0, 0.5, 1.0]
    """
    z = np.exp(-np.abs(x))
    # numerator 1 where x >= 0 and z = exp(x) where x < 0; maximum, not np.where (several times faster)
    return np.maximum(z, x >= 0) / (1 + z)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logistic sigmoid. Returns ``(out, cache)``; the cache is ``out`` (sigma' = sigma (1 - sigma)).

    Shape:
        x, out: (*), the same shape.
    """
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of the sigmoid: ``dout * s * (1 - s)`` with ``s`` the forward output."""
    return dout * cache * (1 - cache)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hyperbolic tangent. Returns ``(out, cache)``; the cache is ``out`` (tanh' = 1 - tanh^2).

    Shape:
        x, out: (*), the same shape.
    """
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """Gradient of tanh: ``dout * (1 - t**2)`` with ``t`` the forward output."""
    return dout * (1 - cache * cache)


# ----- softmax -------------------------------------------------------------------------
def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, stable for any finite input.

    Subtracting the maximum first leaves the result unchanged (the factor ``exp(-max)``
    cancels) and makes every exponent <= 0, so nothing overflows.

    Example:
        >>> softmax(np.array([[1e4, 1e4, -1e4]])).tolist()
        [[0.5, 0.5, 0.0]]
    """
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log(softmax(x))`` computed as ``x - max - log(sum(exp(x - max)))`` (log-sum-exp).

    Unlike ``np.log(softmax(x))`` it stays finite where softmax underflows to 0.

    Example:
        >>> log_softmax(np.array([0.0, -1e4])).tolist()
        [0.0, -10000.0]
    """
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_forward(x: np.ndarray, axis: int = 1) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """Softmax along ``axis`` (the class axis, 1 by default). Returns ``(out, (out, axis))``.

    Shape:
        x, out: (N, K, *), the same shape.
    """
    out = softmax(x, axis=axis)
    return out, (out, axis)


def softmax_backward(dout: np.ndarray, cache: tuple[np.ndarray, int]) -> np.ndarray:
    """Gradient of softmax: the Jacobian ``diag(s) - s s^T`` applied without building it,
    ``dx = s * (dout - sum(dout * s))`` along the softmax axis."""
    s, axis = cache
    return s * (dout - np.sum(dout * s, axis=axis, keepdims=True))
