"""2-D convolution layer over ``cnnlab.ops.conv``.

Example:
    >>> layer = Conv2d(1, 32, 3, padding=1, rng=0)
    >>> layer
    Conv2d(1, 32, kernel_size=3, padding=1)
    >>> layer.weight.shape, layer.bias.shape, layer.num_parameters()
    ((32, 1, 3, 3), (32,), 320)
    >>> layer(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
    (2, 32, 28, 28)
    >>> Conv2d(3, 64, 3).num_parameters()     # 64 * (3*3*3) weights + 64 biases
    1792

``fuse_layers`` groups Conv2d -> ReLU -> MaxPool2d triples into one :class:`ConvReLUMaxPool`
step for the training loop (the same numbers, fewer passes over memory).
"""
from __future__ import annotations

import numpy as np

from cnnlab._checks import check_image_batch, check_positive_int
from cnnlab.layers.base import DEFAULT_DTYPE, Layer, Parameter, as_rng
from cnnlab.ops.conv import (can_fuse_maxpool, conv2d_backward, conv2d_forward, conv2d_relu_maxpool2d_backward,
                             conv2d_relu_maxpool2d_forward, conv_impl)
from cnnlab.ops.shapes import conv_output_size, resolve_padding, to_pair


def _compact(pair: tuple[int, int]):
    """``3`` for (3, 3), ``[3, 5]`` for (3, 5): the JSON- and repr-friendly form."""
    return pair[0] if pair[0] == pair[1] else [pair[0], pair[1]]


def _fmt(pair: tuple[int, int]) -> str:
    """``3`` for (3, 3), ``(3, 5)`` otherwise, as PyTorch prints them."""
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


def _get_initializer(weight_init):
    from cnnlab.initializers import get_initializer  # lazy: keeps layers importable on their own

    return get_initializer(weight_init)


class Conv2d(Layer):
    """2-D convolution: ``out_channels`` learned filters of shape (in_channels, KH, KW).

    Weights are He/Kaiming normal by default, ``std = sqrt(2 / fan_in)`` with
    ``fan_in = in_channels * KH * KW`` (suits ReLU); biases start at zero. Parameter count:
    ``out_channels * in_channels * KH * KW (+ out_channels)``.

    Args:
        in_channels: channels C_in of the input.
        out_channels: number of filters C_out.
        kernel_size: int or (KH, KW).
        stride: int or (sh, sw).
        padding: int, (ph, pw), ``"valid"`` (0) or ``"same"`` (keeps H, W; stride 1, odd
            kernels); zero padding.
        bias: whether to learn a bias per filter.
        weight_init: initializer name (``"he_normal"``, ``"glorot_uniform"``, ... see
            ``cnnlab.initializers``) or function ``init(shape, fan_in, fan_out, rng, dtype)``.
        dtype: float32 (default) or float64; inputs must match.
        rng: Generator, int seed or None, used by ``reset_parameters``.
        impl: ``"fast"`` (default), ``"im2col"`` or ``"naive"`` (see ``cnnlab.ops.conv``).

    Attributes:
        weight: Parameter (C_out, C_in, KH, KW), PyTorch's layout.
        bias: Parameter (C_out,), or None.
        kernel_size, stride, padding: resolved pairs (``padding`` is numeric even for "same").

    Shape:
        x: (N, C_in, H, W). out: (N, C_out, H_out, W_out),
        ``H_out = floor((H + 2*ph - KH) / sh) + 1`` and likewise for W.
    """

    param_names = ("weight", "bias")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True, *,
                 weight_init="he_normal", dtype=DEFAULT_DTYPE, rng=None, impl: str = "fast"):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "Conv2d in_channels")
        self.out_channels = check_positive_int(out_channels, "Conv2d out_channels")
        self.kernel_size = to_pair(kernel_size, "Conv2d kernel_size")
        self.stride = to_pair(stride, "Conv2d stride")
        if isinstance(padding, str) and padding not in ("same", "valid"):
            raise ValueError(f"Conv2d padding must be an int, a pair, 'valid' or 'same'; received {padding!r}.")
        self.padding = resolve_padding(padding, self.kernel_size, self.stride)
        self._padding_arg = padding if isinstance(padding, str) else _compact(self.padding)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Conv2d bias must be True or False; received {bias!r}.")
        self.use_bias = bool(bias)
        _get_initializer(weight_init)  # raises for an unknown name, before any state is set
        self.weight_init = weight_init
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"Conv2d dtype must be float32 or float64; received {dtype}.")
        self._dtype = dtype
        conv_impl(impl)  # raises for an unknown name
        self.impl = impl
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """Draw the weights with ``weight_init`` (fan_in = C_in*KH*KW, fan_out = C_out*KH*KW); bias = 0."""
        rng = as_rng(rng)
        KH, KW = self.kernel_size
        shape = (self.out_channels, self.in_channels, KH, KW)
        init = _get_initializer(self.weight_init)
        w = init(shape, self.in_channels * KH * KW, self.out_channels * KH * KW, rng, self._dtype)
        if not isinstance(w, np.ndarray) or w.shape != shape or w.dtype != self._dtype:
            got = f"{w.shape} {w.dtype}" if isinstance(w, np.ndarray) else type(w).__name__
            raise ValueError(f"Conv2d weight_init must return an array of shape {shape} and dtype {self._dtype}; "
                             f"received {got}.")
        self.weight = Parameter(w, "weight")
        self.bias = Parameter(np.zeros(self.out_channels, dtype=self._dtype), "bias") if self.use_bias else None
        self._cache = None

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Convolve ``x`` with the filters and add the bias.

        Raises:
            TypeError: non-float input, or a dtype different from the weights'.
            ValueError: not (N, C_in, H, W) (with the NCHW hint for NHWC input), or an image
                smaller than the kernel after padding.
        """
        check_image_batch(x, "Conv2d", channels=self.in_channels, dtype=self.weight.data.dtype)
        self.output_shape(x.shape[1:])  # raises when the kernel does not fit
        b = self.bias.data if self.bias is not None else None
        out, cache = conv2d_forward(x, self.weight.data, b, self.stride, self.padding, impl=self.impl)
        self._cache = cache if self._keep(training, requires_grad) else None
        return out

    def backward(self, dout: np.ndarray, *, need_dx: bool = True) -> np.ndarray | None:
        """Return d(loss)/dx and set ``weight.grad`` and ``bias.grad``.

        Args:
            dout: d(loss)/d(out).
            need_dx: False skips d(loss)/dx and returns None (the training loop does this for
                a first layer, whose input is the data: one GEMM and one col2im fewer).

        Shape:
            dout: (N, C_out, H_out, W_out). returns: (N, C_in, H, W).
        """
        dx, dw, db = conv2d_backward(dout, self._require_cache(), need_dx=need_dx)
        self.weight.grad = dw
        if self.bias is not None:
            self.bias.grad = db
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C_out, H_out, W_out) for a per-sample input shape (C_in, H, W)."""
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            hint = ""
            if len(input_shape) == 3 and input_shape[2] == self.in_channels:
                hint = " cnnlab is channels-first: try x.transpose(0, 3, 1, 2)."
            raise ValueError(f"Conv2d expected per-sample input of shape ({self.in_channels}, H, W); received "
                             f"{input_shape}.{hint}")
        _, H, W = input_shape
        (KH, KW), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if KH > H + 2 * ph or KW > W + 2 * pw:
            raise ValueError(f"Conv2d kernel_size {self.kernel_size} is larger than the padded input "
                             f"{(H + 2 * ph, W + 2 * pw)} (input {(H, W)} + padding {self.padding} on each side); "
                             f"use a smaller kernel or more padding.")
        return (self.out_channels, conv_output_size(H, KH, sh, ph), conv_output_size(W, KW, sw, pw))

    def astype(self, dtype) -> "Conv2d":
        super().astype(dtype)
        self._dtype = np.dtype(dtype)
        return self

    def _init_name(self) -> str:
        from cnnlab.initializers import initializer_name

        return initializer_name(self.weight_init, "Conv2d")

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": _compact(self.kernel_size), "stride": _compact(self.stride),
                "padding": self._padding_arg, "bias": self.use_bias, "weight_init": self._init_name(),
                "dtype": str(self.weight.data.dtype), "impl": self.impl}

    def extra_repr(self) -> str:
        parts = [str(self.in_channels), str(self.out_channels), f"kernel_size={_fmt(self.kernel_size)}"]
        if self.stride != (1, 1):
            parts.append(f"stride={_fmt(self.stride)}")
        if self.padding != (0, 0) or self._padding_arg == "same":
            parts.append(f"padding={self._padding_arg!r}" if isinstance(self._padding_arg, str)
                         else f"padding={_fmt(self.padding)}")
        if not self.use_bias:
            parts.append("bias=False")
        if self.weight_init != "he_normal":
            name = self.weight_init if isinstance(self.weight_init, str) else getattr(self.weight_init, "__name__", "?")
            parts.append(f"weight_init={name!r}")
        if self.weight.data.dtype != np.dtype(DEFAULT_DTYPE):
            parts.append(f"dtype={self.weight.data.dtype}")
        if self.impl != "fast":
            parts.append(f"impl={self.impl!r}")
        return ", ".join(parts)


# ----- fusion for the training loop ------------------------------------------------------------------
class ConvReLUMaxPool:
    """Conv2d -> ReLU -> MaxPool2d run as one op (``cnnlab.ops.conv.conv2d_relu_maxpool2d_forward``).

    Not a Layer and never saved: a step of the training loop over three existing layers,
    which it leaves untouched except for the conv's ``weight.grad`` / ``bias.grad`` (and their
    caches, cleared: the block keeps its own). The numbers are those of the three layers run
    one after the other, bit for bit (tested).

    Args:
        conv, relu, pool: the layers; see :func:`fuse_layers` for when they qualify.

    Shape:
        x: (N, C_in, H, W). out: (N, C_out, H_out // PH, W_out // PW).
    """

    def __init__(self, conv: Conv2d, relu: Layer, pool: Layer):
        self.conv, self.relu, self.pool = conv, relu, pool
        self.layers = (conv, relu, pool)
        self._cache = None

    def forward(self, x: np.ndarray, *, training: bool = False) -> np.ndarray:
        """The pooled activations; keeps the cache for ``backward`` when ``training``."""
        conv = self.conv
        check_image_batch(x, "Conv2d", channels=conv.in_channels, dtype=conv.weight.data.dtype)
        conv.output_shape(x.shape[1:])  # raises when the kernel does not fit
        b = conv.bias.data if conv.bias is not None else None
        out, cache = conv2d_relu_maxpool2d_forward(x, conv.weight.data, b, conv.stride, conv.padding,
                                                   self.pool.kernel_size)
        for layer in self.layers:
            layer._cache = None
        self._cache = cache if training else None
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

    def __repr__(self) -> str:
        return f"ConvReLUMaxPool({self.conv!r}, {self.relu!r}, {self.pool!r})"


def fuse_layers(layers, input_shape) -> list:
    """The layers as training-loop steps, each Conv2d -> ReLU -> MaxPool2d triple that can run
    fused replaced by one :class:`ConvReLUMaxPool`.

    A triple qualifies when all three are exactly those classes (a subclass may change what
    its forward does), both ops use ``impl="fast"``, and the pooling windows tile the conv's
    output (stride = window, no padding, sizes divisible). Anything else stays as it is.

    Args:
        layers: the model's layers, in order.
        input_shape: per-sample input shape (C, H, W), to know each conv's output size.

    Returns:
        a list of steps, each with ``forward(x, training=...)`` and ``backward(dout)``.

    Example:
        >>> from cnnlab.zoo import simple_cnn
        >>> [type(s).__name__ for s in fuse_layers(simple_cnn().layers, (1, 28, 28))]
        ['ConvReLUMaxPool', 'ConvReLUMaxPool', 'Flatten', 'Dense', 'ReLU', 'Dense']
    """
    from cnnlab.layers.activation import ReLU
    from cnnlab.layers.pooling import MaxPool2d

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
