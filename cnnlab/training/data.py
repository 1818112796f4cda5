"""What ``fit``, ``evaluate`` and ``predict`` check and do to the data before any state changes."""
from __future__ import annotations

import math

import numpy as np

from cnnlab.datasets.preprocessing import random_shift
from cnnlab.models.budget import check_compute_budget
from cnnlab.utils.validation import check_array, layout_hint

__all__ = ["check_x", "check_xy", "check_batch_statistics", "bind_rng", "make_augment"]


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
    # one example's forward pass must fit in memory (a model without input_shape is checked here)
    check_compute_budget(model, tuple(x.shape[1:]), what=f"this model on {name} of shape {x.shape}")
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


def check_batch_statistics(model, sample_shape, n_train: int, batch_size: int) -> None:
    """Refuse, before training, a run in which a batch-norm layer would see a batch with one
    value per channel (BatchNorm1d and a last batch of one example; BatchNorm2d on 1x1 maps):
    its variance is 0/0, so it would fail mid-epoch after the weights had changed.

    Why refuse rather than ``drop_last``: dropping samples silently changes which data a run
    sees (and the bits of every existing run); the fix is one choice away and the message
    names both: a batch size that leaves no single-example batch, or one more/fewer sample.
    """
    sizes = {min(batch_size, n_train)}
    if n_train % batch_size:
        sizes.add(n_train % batch_size)
    try:
        shapes = [tuple(sample_shape)] + model.layer_shapes(tuple(sample_shape))
    except (ValueError, TypeError):
        return  # fit's own checks name the layer that does not fit
    for i, layer in enumerate(model.layers):
        if not layer.needs_batch_statistics:
            continue
        per_channel = math.prod(shapes[i][1:])  # values per channel per example
        for n in sorted(sizes):
            if n * per_channel == 1:
                good = next((b for b in range(batch_size, 0, -1) if n_train % b != 1 and b > 1), None)
                fix = f"use batch_size={good} or drop or add one training sample" if good else \
                    "use batch_size >= 2 and at least 2 training samples"
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) would get a training batch of {n} example with one value "
                    f"per channel ({n_train} samples in batches of {batch_size} leave a last batch of {n}): batch "
                    f"norm needs more than 1 value per channel to compute a variance. Fix: {fix}."
                )
