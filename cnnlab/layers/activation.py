"""Activation layers: parameter-free wrappers over ``cnnlab.ops.activation``.

They accept float32 or float64 input of any shape (Softmax: at least (N, K)) and return the
same dtype and shape.

Example:
    >>> relu = ReLU()
    >>> relu(np.array([[-1.0, 2.0]])).tolist()
    [[0.0, 2.0]]
    >>> LeakyReLU(0.2)
    LeakyReLU(negative_slope=0.2)
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_float_array, check_real
from cnnlab.layers.base import Layer
from cnnlab.layers.describe import shapes_of
from cnnlab import engines
from cnnlab.ops import activation as F


class _Elementwise(Layer):
    """Shared plumbing for elementwise activations: check, call the op, keep the cache."""

    _forward = staticmethod(engines.relu_forward)
    _backward = staticmethod(engines.relu_backward)

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Apply the activation elementwise.

        Shape:
            x, out: (N, *), the same shape.
        """
        check_float_array(x, f"{type(self).__name__} input")
        out, cache = self._forward(x)
        self._set_cache(cache, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """d(loss)/dx from d(loss)/d(out), shaped like the input."""
        self._check_dout(dout)
        return self._backward(dout, self._cache)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)

    is_activation = True
    elementwise = True
    _what = ""  # what the activation does to each value

    def explain(self, input_shape=None) -> str:
        return f"{type(self).__name__}: {self._what}{shapes_of(self, input_shape).same}; 0 parameters"


class ReLU(_Elementwise):
    """Rectified linear unit, ``max(x, 0)``; its gradient at 0 is 0 (as PyTorch)."""

    _what = "replaces every negative value by 0 and keeps positive ones"
    can_die = True


class LeakyReLU(_Elementwise):
    """``x`` for x > 0, ``negative_slope * x`` otherwise.

    Args:
        negative_slope: slope for negative inputs (PyTorch's default 0.01).
    """

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = check_real(negative_slope, "LeakyReLU negative_slope")

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Apply leaky ReLU elementwise.

        Shape:
            x, out: (N, *), the same shape.
        """
        check_float_array(x, "LeakyReLU input")
        out, cache = F.leaky_relu_forward(x, self.negative_slope)
        self._set_cache(cache, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """d(loss)/dx from d(loss)/d(out), shaped like the input."""
        self._check_dout(dout)
        return F.leaky_relu_backward(dout, self._cache)

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope}

    def extra_repr(self) -> str:
        return "" if self.negative_slope == 0.01 else f"negative_slope={self.negative_slope}"

    def explain(self, input_shape=None) -> str:
        return (f"LeakyReLU: keeps positive values and multiplies negative ones by {self.negative_slope:g}"
                f"{shapes_of(self, input_shape).same}; 0 parameters")


class Sigmoid(_Elementwise):
    """Logistic sigmoid ``1 / (1 + exp(-x))``, computed without overflow."""

    _what = "squashes every value into (0, 1) with 1 / (1 + exp(-x))"

    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)


class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    _what = "squashes every value into (-1, 1) with tanh(x)"

    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)


class Softmax(Layer):
    """Softmax over the class axis 1: turns logits into probabilities.

    Usually not needed: ``CrossEntropyLoss`` takes logits and applies a stable log-softmax
    itself, so a model that ends in ``Softmax`` *and* trains with cross-entropy applies
    softmax twice (the training doctor warns about this). Use it for prediction outputs.

    Shape:
        x, out: (N, K) or (N, K, *), softmax along K.
    """

    outputs_probabilities = True

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Probabilities along axis 1 (each row sums to 1)."""
        check_float_array(x, "Softmax input")
        if x.ndim < 2:
            raise ValueError(
                f"Softmax expected input of shape (N, K) (softmax over axis 1); received shape "
                f"{x.shape}. For a single sample add the batch axis: x[None]."
            )
        out, cache = F.softmax_forward(x, axis=1)
        self._set_cache(cache, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """d(loss)/dx through the softmax Jacobian, shaped like the input."""
        self._check_dout(dout)
        return F.softmax_backward(dout, self._cache)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1:
            raise ValueError(
                f"Softmax expected per-sample input of shape (K,) or (K, *); received {tuple(input_shape)}."
            )
        return tuple(input_shape)

    def explain(self, input_shape=None) -> str:
        return (f"Softmax: turns each sample's scores into probabilities that sum to 1"
                f"{shapes_of(self, input_shape).same}; 0 parameters")
