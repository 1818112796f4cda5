"""What ``fit``, ``evaluate`` and ``predict`` check and do to the data before any state changes."""
from __future__ import annotations

import math

import numpy as np

from cnnlab.datasets.preprocessing import random_shift
from cnnlab.utils.validation import check_array, layout_hint

__all__ = ["check_x", "check_xy", "bind_rng", "make_augment"]


def check_x(model, x, name: str = "x") -> np.ndarray:
    """x must be a float array of the model's dtype and shape (N, *input_shape), finite."""
    check_array(x, name)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise TypeError(
            f"{name} has dtype {x.dtype}; the model needs floats of about unit scale and cnnlab never "
            f"converts silently. For 8-bit pixels use {name} = {name}.astype('float32') / 255."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a float array; received dtype {x.dtype}.")
    dtype = model.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's weights are {dtype}; cnnlab never converts "
            f"silently: pass {name}.astype(np.{dtype}) (or convert the model with model.astype(np.{x.dtype}))."
        )
    shape = model.input_shape
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {x.shape}).")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}) for this model; "
                         f"received {x.shape}.{layout_hint(x.shape, (None, *shape), name)}")
    # The sum is finite iff every value is (barring overflow, which the exact check then sorts out).
    if not math.isfinite(float(np.sum(x, dtype=np.float64))):
        bad = ~np.isfinite(x)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values (the first at index "
                             f"{tuple(int(i) for i in first)}); clean the data first.")
    return x


def _n_classes(model, sample_shape) -> int:
    out = model.layer_shapes(tuple(sample_shape))[-1]
    if len(out) != 1:
        raise ValueError(f"the model's output must be (N, K) class scores; its per-sample output shape is {out}. "
                         f"Add Flatten() and Dense(..., K) at the end.")
    return int(out[0])


def check_xy(model, x, y, xname: str = "x", yname: str = "y") -> tuple[np.ndarray, np.ndarray, int]:
    check_x(model, x, xname)
    check_array(y, yname)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        if y.ndim == 2 and y.shape[0] == x.shape[0]:
            raise ValueError(f"{yname} must be integer class indices of shape ({x.shape[0]},); received shape "
                             f"{y.shape}. For one-hot labels use {yname}.argmax(1).")
        raise ValueError(f"{xname} has {x.shape[0]} samples but {yname} has shape {y.shape}; expected "
                         f"({x.shape[0]},): one label per sample.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{yname} must be integer class indices; received dtype {y.dtype}. "
                        f"Use {yname}.astype(np.int64).")
    k = _n_classes(model, x.shape[1:])
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"{yname} must be class indices in [0, {k - 1}] for this model's {k} outputs; "
                         f"received values from {lo} to {hi}.")
    return x, y, k


def bind_rng(model, rng: np.random.Generator) -> None:
    """Make every layer with an ``rng`` attribute (Dropout) draw from the run's generator."""
    for layer in model.layers:
        if hasattr(layer, "rng"):
            layer.rng = rng


def make_augment(augment):
    if augment is None or augment is False or (isinstance(augment, (int, np.integer)) and augment == 0):
        return None
    if callable(augment):
        return augment
    k = int(augment)

    def shift(xb, rng):
        return random_shift(xb, k, rng)

    return shift
