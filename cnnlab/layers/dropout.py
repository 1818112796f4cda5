"""Dropout layer over ``cnnlab.ops.dropout`` (inverted dropout).

Example:
    >>> drop = Dropout(0.5, rng=0)
    >>> x = np.ones((2, 4), dtype=np.float32)
    >>> drop(x).tolist() == x.tolist()  # inference (the default) is the identity
    True
    >>> sorted(set(drop(x, training=True).ravel().tolist()))
    [0.0, 2.0]
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_float_array, check_real
from cnnlab.layers.describe import shapes_of
from cnnlab.layers.base import Layer, as_rng
from cnnlab.ops.dropout import dropout_backward, dropout_forward


class Dropout(Layer):
    """Zero each unit with probability ``p`` during training, scaling the rest by ``1 / (1 - p)``.

    At inference (``training=False``) it is the identity, with no rescaling needed.

    Args:
        p: probability of DROPPING a unit, in [0, 1) (PyTorch's meaning; Keras' ``rate``).
            Not the keep probability of the original paper.
        rng: a Generator, an int seed or None; stored as ``self.rng``, the only source of
            masks. A model may replace it to control randomness.

    Shape:
        x, out: (N, *), the same shape.
    """

    elementwise = True

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        if isinstance(p, (int, float)) and not isinstance(p, bool) and p == 1:
            raise ValueError(
                "Dropout p is the probability of dropping a unit and must be in [0, 1); received "
                "1.0, which would drop every unit. To keep every unit use p=0."
            )
        self.p = check_real(p, "Dropout p (the probability of dropping a unit)", 0.0, 1.0, high_inclusive=False)
        self.rng = as_rng(rng)

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Drop units (training) or return ``x`` unchanged (inference)."""
        check_float_array(x, "Dropout input")
        out, cache = dropout_forward(x, self.p, self.rng, training)
        # the identity has cache None: keep a marker so backward knows a forward happened
        self._set_cache((cache,), out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """d(loss)/dx: ``dout`` through the same mask and scale."""
        self._check_dout(dout)
        (cache,) = self._cache
        return dropout_backward(dout, cache)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {"p": self.p}

    def extra_repr(self) -> str:
        return "" if self.p == 0.5 else f"p={self.p}"

    def explain(self, input_shape=None) -> str:
        p = self.p
        return (f"Dropout: while training, zeroes each value with probability {p:g} and scales the survivors by "
                f"1/(1-{p:g}) = {1 / (1 - p):.4g}; at inference it does nothing{shapes_of(self, input_shape).same}; "
                f"0 parameters")
