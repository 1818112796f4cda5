"""Flatten: (N, C, H, W) feature maps to (N, C*H*W) vectors, between conv and Dense layers.

Example:
    >>> Flatten()(np.zeros((2, 3, 4, 5))).shape
    (2, 60)
    >>> Flatten().output_shape((64, 7, 7))
    (3136,)
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.utils.validation import check_float_array
from cnnlab.layers.base import Layer
from cnnlab.layers.describe import num, shape_text, shapes_of


class Flatten(Layer):
    """Flatten every axis but the batch axis (C-order, as ``torch.nn.Flatten``).

    Shape:
        x: (N, *). out: (N, prod(*)).
    """

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Reshape to (N, -1); a view when ``x`` is contiguous."""
        check_float_array(x, "Flatten input")
        if x.ndim < 2:
            raise ValueError(
                f"Flatten expected input with a batch axis, shape (N, ...) (2 or more dimensions); "
                f"received shape {x.shape}."
            )
        out = x.reshape(x.shape[0], -1)  # (N, C*H*W)
        self._set_cache(x.shape, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Reshape the gradient back to the input shape."""
        self._check_dout(dout)
        return dout.reshape(self._cache)  # (N, C, H, W)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) == 0:
            raise ValueError("Flatten expected per-sample input with at least 1 dimension; received ().")
        return (math.prod(input_shape),)

    keeps_spatial_layout = False

    def explain(self, input_shape=None) -> str:
        s = shapes_of(self, input_shape)
        if s.shape is None:
            return "Flatten: lays each sample's values out as one vector; 0 parameters"
        expr = "*".join(str(d) for d in s.shape)
        return (f"Flatten: lays the {shape_text(s.shape)} values out as one vector of {expr} = {num(s.out[0])} numbers; "
                f"0 parameters")
