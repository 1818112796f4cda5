"""Pooling layers over ``cnnlab.ops.pool``: MaxPool2d, AvgPool2d, GlobalAvgPool2d.

Pooling has no parameters; it accepts float32 and float64 and returns the same dtype.

Example:
    >>> pool = MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=2)
    >>> pool.output_shape((32, 28, 28))
    (32, 14, 14)
    >>> x = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float32)
    >>> pool(x[None, None])[0, 0]
    array([[ 6.,  8.],
           [ 9., 11.]], dtype=float32)
    >>> GlobalAvgPool2d()(np.ones((2, 8, 7, 7))).shape
    (2, 8)
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.formatting import compact_pair, format_pair
from cnnlab.utils.validation import check_image_batch
from cnnlab.layers.describe import hw_text, shape_text, shapes_of
from cnnlab.layers.base import Layer
from cnnlab.engines import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward, resolve
from cnnlab.ops.pool import global_avgpool2d_backward, global_avgpool2d_forward
from cnnlab.ops.shapes import conv_output_size, to_pair


class _Pool2d(Layer):
    """Shared settings, checks, shapes and config of the windowed pooling layers."""

    _forward_op = None
    _backward_op = None

    def __init__(self, kernel_size, stride=None, padding=0, impl: str = "fast"):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = to_pair(kernel_size, f"{name} kernel_size")
        self.stride = self.kernel_size if stride is None else to_pair(stride, f"{name} stride")
        self.padding = to_pair(padding, f"{name} padding", minimum=0)
        half = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        if self.padding[0] > half[0] or self.padding[1] > half[1]:
            raise ValueError(f"{name} padding must be at most half the kernel size, {format_pair(half)} for "
                             f"kernel_size={format_pair(self.kernel_size)}; received padding={format_pair(self.padding)}.")
        resolve("maxpool2d", impl)  # raises for an unknown name
        self.impl = impl

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Pool each window of each channel.

        Raises:
            TypeError: non-float input.
            ValueError: not (N, C, H, W), or an image smaller than the window after padding.
        """
        check_image_batch(x, type(self).__name__)
        self.output_shape(x.shape[1:])  # raises when the window does not fit
        out, cache = type(self)._forward_op(x, self.kernel_size, self.stride, self.padding, impl=self.impl)
        self._cache = cache if self.keeps_cache(training, requires_grad) else None
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return d(loss)/dx.

        Shape:
            dout: (N, C, H_out, W_out). returns: (N, C, H, W).
        """
        return type(self)._backward_op(dout, self._require_cache())

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H_out, W_out) for a per-sample input shape (C, H, W)."""
        input_shape = tuple(int(d) for d in input_shape)
        name = type(self).__name__
        if len(input_shape) != 3:
            raise ValueError(f"{name} expected per-sample input of shape (C, H, W); received {input_shape}.")
        C, H, W = input_shape
        (KH, KW), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if KH > H + 2 * ph or KW > W + 2 * pw:
            raise ValueError(f"{name} kernel_size {self.kernel_size} is larger than the padded input "
                             f"{(H + 2 * ph, W + 2 * pw)} (input {(H, W)}, padding {self.padding}); "
                             f"use a smaller window or a larger input.")
        return (C, conv_output_size(H, KH, sh, ph), conv_output_size(W, KW, sw, pw))

    def get_config(self) -> dict:
        return {"kernel_size": compact_pair(self.kernel_size), "stride": compact_pair(self.stride),
                "padding": compact_pair(self.padding), "impl": self.impl}

    def extra_repr(self) -> str:
        parts = [f"kernel_size={format_pair(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            parts.append(f"stride={format_pair(self.stride)}")
        if self.padding != (0, 0):
            parts.append(f"padding={format_pair(self.padding)}")
        if self.impl != "fast":
            parts.append(f"impl={self.impl!r}")
        return ", ".join(parts)

    # ----- what it does, in words ---------------------------------------------------------------
    produces_feature_maps = True
    _verb = ""  # "keeps the largest value of" / "averages"

    def window(self, input_shape=None):
        return self.kernel_size, self.stride, self.padding

    def explain(self, input_shape=None) -> str:
        s = shapes_of(self, input_shape)
        (kh, kw), stride, padding = self.window()
        channels = "each channel" if s.shape is None else f"each of the {s.shape[0]} channels"
        pad = "" if padding == (0, 0) else f" and padding {hw_text(padding)}"
        return (f"{type(self).__name__}: {self._verb} each {kh}x{kw} window, moving {hw_text(stride)} at a time{pad}, "
                f"separately in {channels}{'' if s.shape is None else ': ' + shape_text(s.shape)}{s.arrow}; 0 parameters")


class MaxPool2d(_Pool2d):
    """Max pooling: each output is the largest value of its window.

    The gradient of a window goes only to its first maximum in row-major order (PyTorch's
    tie rule); where windows overlap, gradients add. Padding pads with -inf.

    Args:
        kernel_size: int or (KH, KW).
        stride: int, pair, or None (default: kernel_size, non-overlapping windows).
        padding: int or pair, at most half the kernel.
        impl: the engine, ``"fast"`` (default), ``"numpy"``, ``"numba"`` or ``"naive"`` (see ``cnnlab.engines``).

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out), ``H_out = floor((H + 2*ph - KH) / sh) + 1``.
    """

    _verb = "keeps the largest value of"
    _forward_op = staticmethod(maxpool2d_forward)
    _backward_op = staticmethod(maxpool2d_backward)


class AvgPool2d(_Pool2d):
    """Average pooling: each output is the mean of its window.

    Zero padding counts in the divisor (every window divides by KH*KW), as PyTorch's default
    ``count_include_pad=True``.

    Args:
        kernel_size: int or (KH, KW).
        stride: int, pair, or None (default: kernel_size).
        padding: int or pair, at most half the kernel; zeros.
        impl: ``"fast"`` (default), ``"im2col"`` or ``"naive"``.

    Shape:
        x: (N, C, H, W). out: (N, C, H_out, W_out).
    """

    _verb = "averages"
    _forward_op = staticmethod(avgpool2d_forward)
    _backward_op = staticmethod(avgpool2d_backward)


class GlobalAvgPool2d(Layer):
    """Mean of each channel over all positions: one number per feature map.

    Shape:
        x: (N, C, H, W). out: (N, C).
    """

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        check_image_batch(x, "GlobalAvgPool2d")
        out, cache = global_avgpool2d_forward(x)
        self._cache = cache if self.keeps_cache(training, requires_grad) else None
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return global_avgpool2d_backward(dout, self._require_cache())

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"GlobalAvgPool2d expected per-sample input of shape (C, H, W); received {input_shape}.")
        return (input_shape[0],)

    def get_config(self) -> dict:
        return {}

    def window(self, input_shape=None):
        """The whole input map: needs the per-sample ``input_shape`` (C, H, W)."""
        if input_shape is None:
            raise ValueError("receptive_field needs input_shape=(C, H, W) for a model with GlobalAvgPool2d "
                             "(its window is the whole input map); received none.")
        return (int(input_shape[1]), int(input_shape[2])), (1, 1), (0, 0)

    def explain(self, input_shape=None) -> str:
        s = shapes_of(self, input_shape)
        if s.shape is None:
            return "GlobalAvgPool2d: averages each channel over its whole map, one number per channel; 0 parameters"
        return (f"GlobalAvgPool2d: averages each of the {s.shape[0]} channels over its whole {s.shape[1]}x{s.shape[2]} "
                f"map: {shape_text(s.shape)}{s.arrow}; 0 parameters")
