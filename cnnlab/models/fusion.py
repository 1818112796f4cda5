"""The model's fusion plan: Conv2d -> ReLU -> MaxPool2d triples run as one op.

``Sequential.forward`` runs the steps of :func:`fuse_layers` instead of the bare layers:
each triple that can run fused becomes one :class:`ConvReLUMaxPool` step
(``cnnlab.engines.conv2d_relu_maxpool2d_forward``: one pass over the conv's output instead
of five, and the full-size activations are never written); every other layer is its own
step. The numbers are those of the three layers run one after the other, bit for bit (tested).

Example:
    >>> from cnnlab.models.zoo import simple_cnn
    >>> [type(s).__name__ for s in fuse_layers(simple_cnn().layers, (1, 28, 28))]
    ['ConvReLUMaxPool', 'ConvReLUMaxPool', 'Flatten', 'Dense', 'ReLU', 'Dense']
"""
from __future__ import annotations

import numpy as np

from cnnlab.engines import can_fuse_maxpool, conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward
from cnnlab.layers.activation import ReLU
from cnnlab.layers.base import Layer
from cnnlab.layers.conv import Conv2d
from cnnlab.layers.pooling import MaxPool2d
from cnnlab.utils.validation import check_image_batch

__all__ = ["ConvReLUMaxPool", "fuse_layers"]


class ConvReLUMaxPool:
    """Conv2d -> ReLU -> MaxPool2d run as one op.

    Not a Layer and never saved: a step of the model's plan over three existing layers,
    which it leaves untouched except for the conv's ``weight.grad`` / ``bias.grad`` (and their
    caches, cleared: the step keeps its own).

    Args:
        conv, relu, pool: the layers; see :func:`fuse_layers` for when they qualify.

    Shape:
        x: (N, C_in, H, W). out: (N, C_out, H_out // PH, W_out // PW).
    """

    def __init__(self, conv: Conv2d, relu: Layer, pool: Layer):
        self.conv, self.relu, self.pool = conv, relu, pool
        self.layers = (conv, relu, pool)
        self._cache = None

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """The pooled activations; keeps the cache for ``backward`` as a layer would."""
        conv = self.conv
        check_image_batch(x, "Conv2d", channels=conv.in_channels, dtype=conv.weight.data.dtype)
        conv.output_shape(x.shape[1:])  # raises when the kernel does not fit
        b = conv.bias.data if conv.bias is not None else None
        out, cache = conv2d_relu_maxpool2d_forward(x, conv.weight.data, b, conv.stride, conv.padding,
                                                   self.pool.kernel_size)
        for layer in self.layers:
            layer.clear_cache()
        self._cache = cache if conv.keeps_cache(training, requires_grad) else None
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """d(loss)/dx (None when not ``need_dx``); sets the conv's ``weight.grad`` and ``bias.grad``."""
        if self._cache is None:
            raise RuntimeError("ConvReLUMaxPool.backward() called before forward(x, training=True).")
        dx, dw, db = conv2d_relu_maxpool2d_backward(dout, self._cache, need_dx=need_dx)
        self.conv.weight.grad = dw
        if self.conv.bias is not None:
            self.conv.bias.grad = db
        return dx

    def backward_params(self, dout: np.ndarray) -> None:
        """The conv's parameter gradients only (no input gradient: a first step's input is data)."""
        self.backward(dout, need_dx=False)

    def clear_cache(self) -> None:
        self._cache = None

    def __repr__(self) -> str:
        return f"ConvReLUMaxPool({self.conv!r}, {self.relu!r}, {self.pool!r})"


def fuse_layers(layers, input_shape) -> list:
    """The layers as steps, each Conv2d -> ReLU -> MaxPool2d triple that can run fused replaced
    by one :class:`ConvReLUMaxPool`.

    A triple qualifies when all three are exactly those classes (a subclass may change what
    its forward does), both ops use the default engine (``impl="fast"``), and the pooling
    windows tile the conv's output (stride = window, no padding, sizes divisible). Anything
    else stays as it is.

    Args:
        layers: the model's layers, in order.
        input_shape: per-sample input shape (C, H, W), to know each conv's output size.

    Returns:
        a list of steps, each with ``forward(x, training=..., requires_grad=...)`` and ``backward(dout)``.
    """
    layers, steps, shape, i = list(layers), [], tuple(input_shape), 0
    while i < len(layers):
        conv = layers[i]
        if (type(conv) is Conv2d and conv.impl == "fast" and i + 2 < len(layers)
                and type(layers[i + 1]) is ReLU and type(layers[i + 2]) is MaxPool2d and layers[i + 2].impl == "fast"):
            pool = layers[i + 2]
            out_shape = conv.output_shape(shape)
            if can_fuse_maxpool(out_shape[1:], pool.kernel_size, pool.stride, pool.padding):
                steps.append(ConvReLUMaxPool(conv, layers[i + 1], pool))
                shape = pool.output_shape(out_shape)
                i += 3
                continue
        steps.append(conv)
        shape = tuple(conv.output_shape(shape))
        i += 1
    return steps
