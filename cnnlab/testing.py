"""Gradient-checking helpers used by the test suite (and useful to anyone writing a layer).

All checks are float64 central differences scored by the relative error
``max|a - b| / max(max|a|, max|b|)`` (CS231n's gradient_check, done with a random upstream
gradient so that every output element matters). Scaling by the largest magnitude rather than
elementwise keeps entries that are zero up to rounding (max-pool positions that get no
gradient) from dominating the score.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute difference, relative to the largest magnitude in either array.

    Example:
        >>> rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
        0.0
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs equal shapes; received {a.shape} and {b.shape}.")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-300)
    return float(np.max(np.abs(a - b)) / scale)


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``f()`` with respect to ``x`` (modified in place
    and restored).

    Args:
        f: a function of no arguments that reads ``x`` and returns a scalar.
        x: float64 array, any shape.
        h: step.

    Returns:
        Array shaped like ``x``.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array; received {x.dtype}.")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # views: x is contiguous in every caller
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient needs a contiguous array.")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return grad


def check_layer_gradients(layer, x: np.ndarray, *, training: bool = True, seed: int = 0, h: float = 1e-6) -> dict[str, float]:
    """Compare a layer's analytic gradients with central differences, in float64.

    The scalar checked is ``sum(forward(x) * g)`` for a random upstream gradient ``g``.
    Layers with randomness (Dropout) must be made deterministic by the caller (reset its rng
    before each forward, e.g. by wrapping).

    Returns:
        ``{"x": err, "<param name>": err, ...}`` relative errors.
    """
    rng = np.random.default_rng(seed)
    out = layer.forward(x, training=training, requires_grad=True)
    g = rng.standard_normal(out.shape)
    dx = layer.backward(g)
    analytic = {"x": dx.copy()}
    for name in layer.param_names:
        p = getattr(layer, name, None)
        if p is not None:
            analytic[name] = p.grad.copy()

    def loss() -> float:
        return float(np.sum(layer.forward(x, training=training, requires_grad=True) * g))

    errors = {"x": rel_error(analytic["x"], numerical_gradient(loss, x, h))}
    for name in layer.param_names:
        p = getattr(layer, name, None)
        if p is not None:
            errors[name] = rel_error(analytic[name], numerical_gradient(loss, p.data, h))
    return errors
