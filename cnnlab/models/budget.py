"""What an architecture will cost to run, checked before it runs.

A model file of 1 KB can declare a padding of 30,000 or an input of (1, 1048575, 1048575):
few weights, so the weight-count check passes, but one forward pass would need hundreds of
GiB. :func:`check_compute_budget` walks the layers' output shapes for the declared input
(shapes only, nothing is allocated) and adds up the memory one example's forward pass keeps:
the input, every layer's output and, for a convolution, its im2col matrix
(C_in*KH*KW x H_out*W_out). Above :data:`MAX_EXAMPLE_BYTES` the model is refused with the
layer that breaks the budget named.

Example:
    >>> from cnnlab.models.zoo import simple_cnn
    >>> example_bytes(simple_cnn()) < 2**22   # about 2 MB per MNIST image
    True
"""
from __future__ import annotations

import math

import numpy as np

#: memory one example's forward pass may need (activations kept for backward + im2col), bytes.
#: 1 GiB: 100x what a 224x224 VGG-style example needs, far below what breaks a laptop.
MAX_EXAMPLE_BYTES = 1 << 30


def _layer_cost(layer, in_shape, out_shape) -> tuple[int, str]:
    """Values one example keeps for ``layer``: its output, plus the im2col matrix of a conv."""
    values = math.prod(out_shape)
    kernel = getattr(layer, "kernel_size", None)
    if getattr(layer, "in_channels", None) is not None and kernel is not None and len(out_shape) == 3:
        cols = layer.in_channels * kernel[0] * kernel[1] * out_shape[1] * out_shape[2]  # (C*KH*KW, H_out*W_out)
        return values + cols, f"output {out_shape} and an im2col matrix of {cols:,} values"
    return values, f"output {out_shape}"


def example_bytes(model, input_shape=None, itemsize: int | None = None) -> int:
    """Bytes one example's forward pass keeps for ``model`` (see the module docstring).

    Args:
        input_shape: per-sample input shape; the model's own by default.
        itemsize: bytes per value; the model's dtype by default (float32 for a model without
            parameters).
    """
    return _walk(model, input_shape, itemsize, limit=None)


def check_compute_budget(model, input_shape=None, *, max_bytes: int = MAX_EXAMPLE_BYTES, what: str = "this model"):
    """Raise ValueError when one example through ``model`` needs more than ``max_bytes``.

    Does nothing for a model without an input shape (``input_shape`` None and none declared):
    the check then runs on the first data (``predict``/``evaluate``/``fit``).

    Raises:
        ValueError: naming the first layer at which the running total passes the budget,
            the bytes it would need and the budget. (Shapes that do not fit a layer are left
            to that layer's own check.)
    """
    if input_shape is None and getattr(model, "input_shape", None) is None:
        return
    _walk(model, input_shape, None, limit=max_bytes, what=what)


def _walk(model, input_shape, itemsize, limit, what: str = "this model") -> int:
    shape = tuple(int(d) for d in (input_shape if input_shape is not None else model.input_shape))
    if itemsize is None:
        itemsize = np.dtype(model.dtype or np.float32).itemsize
    total = math.prod(shape) * itemsize
    if limit is not None and total > limit:
        raise ValueError(f"{what} declares inputs of shape {shape}: {_gib(total)} per example, more than the "
                         f"budget of {_gib(limit)}; refusing to run it.")
    for i, layer in enumerate(model.layers):
        try:
            out = tuple(int(d) for d in layer.output_shape(shape))
        except (ValueError, TypeError):
            break  # a shape that does not fit: the layer's own check names it when the model runs
        values, detail = _layer_cost(layer, shape, out)
        total += values * itemsize
        if limit is not None and total > limit:
            raise ValueError(
                f"{what} would need {_gib(total)} of memory per example by layer {i} ({type(layer).__name__}: "
                f"{detail}, for inputs of shape {tuple(model.input_shape or shape)}); the budget is {_gib(limit)} "
                f"(cnnlab.models.budget.MAX_EXAMPLE_BYTES). The file is corrupted or hostile, or the architecture "
                f"is far too large."
            )
        shape = out
    return total


def _gib(n: int) -> str:
    return f"{n / 2**30:,.2f} GiB" if n >= 2**30 else f"{n / 2**20:,.1f} MiB"
