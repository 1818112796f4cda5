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
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.formatting import compact_pair, format_pair
from cnnlab.utils.validation import check_image_batch, check_positive_int, layout_hint
from cnnlab.layers.describe import hw_text, num, output_size, shapes_of
from cnnlab.layers.base import DEFAULT_DTYPE, Layer, Parameter, as_rng
from cnnlab.engines import conv2d_backward, conv2d_forward, resolve
from cnnlab.layers.initializers import get_initializer, initializer_name
from cnnlab.ops.shapes import conv_output_size, resolve_padding, to_pair


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
            ``cnnlab.layers.initializers``) or function ``init(shape, fan_in, fan_out, rng, dtype)``.
        dtype: float32 (default) or float64; inputs must match.
        rng: Generator, int seed or None, used by ``reset_parameters``.
        impl: the engine, ``"fast"`` (default: the best one here), ``"numpy"``, ``"numba"``,
            ``"naive"`` or ``"im2col"`` (see ``cnnlab.engines``).

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
        self._padding_arg = padding if isinstance(padding, str) else compact_pair(self.padding)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Conv2d bias must be True or False; received {bias!r}.")
        self.use_bias = bool(bias)
        get_initializer(weight_init)  # raises for an unknown name, before any state is set
        self.weight_init = weight_init
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"Conv2d dtype must be float32 or float64; received {dtype}.")
        self._dtype = dtype
        resolve("conv2d", impl)  # raises for an unknown name
        self.impl = impl
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """Draw the weights with ``weight_init`` (fan_in = C_in*KH*KW, fan_out = C_out*KH*KW); bias = 0."""
        rng = as_rng(rng)
        KH, KW = self.kernel_size
        shape = (self.out_channels, self.in_channels, KH, KW)
        init = get_initializer(self.weight_init)
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
        self._cache = cache if self.keeps_cache(training, requires_grad) else None
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

    def backward_params(self, dout: np.ndarray) -> None:
        """``weight.grad`` and ``bias.grad`` only: skips one GEMM and the col2im of dx."""
        self.backward(dout, need_dx=False)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C_out, H_out, W_out) for a per-sample input shape (C_in, H, W)."""
        input_shape = tuple(int(d) for d in input_shape)
        if len(input_shape) != 3 or input_shape[0] != self.in_channels:
            raise ValueError(f"Conv2d expected per-sample input of shape ({self.in_channels}, H, W); received "
                             f"{input_shape}.{layout_hint(input_shape, (self.in_channels, None, None))}")
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
        return initializer_name(self.weight_init, "Conv2d")

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": compact_pair(self.kernel_size), "stride": compact_pair(self.stride),
                "padding": self._padding_arg, "bias": self.use_bias, "weight_init": self._init_name(),
                "dtype": str(self.weight.data.dtype), "impl": self.impl}

    def extra_repr(self) -> str:
        parts = [str(self.in_channels), str(self.out_channels), f"kernel_size={format_pair(self.kernel_size)}"]
        if self.stride != (1, 1):
            parts.append(f"stride={format_pair(self.stride)}")
        if self.padding != (0, 0) or self._padding_arg == "same":
            parts.append(f"padding={self._padding_arg!r}" if isinstance(self._padding_arg, str)
                         else f"padding={format_pair(self.padding)}")
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

    # ----- what it does, in words ---------------------------------------------------------------
    produces_feature_maps = True

    def window(self, input_shape=None):
        return self.kernel_size, self.stride, self.padding

    def explain(self, input_shape=None) -> str:
        """What the convolution does to the shape, and its parameter count, numbers filled in.

        Example:
            >>> print(Conv2d(1, 32, 3, padding=1, rng=0).explain((1, 28, 28)).splitlines()[0])
            Conv2d: slides 32 filters of size 1x3x3 over the 1x28x28 input with stride 1 and padding 1 -> 32x28x28; 32*(1*3*3)+32 = 320 parameters
        """
        s = shapes_of(self, input_shape)
        (kh, kw), stride, padding = self.window()
        f, c, has_bias = self.out_channels, self.in_channels, self.bias is not None
        count = f"{f}*({c}*{kh}*{kw})" + (f"+{f}" if has_bias else "")
        text = (f"Conv2d: slides {f} filters of size {c}x{kh}x{kw} over {s.shape_in} with stride {hw_text(stride)} "
                f"and padding {hw_text(padding)}{s.arrow}; {count} = {num(self.num_parameters())} parameters"
                + ("" if has_bias else " (no bias)"))
        detail = f"\n  each output value = sum of {c * kh * kw} products (a {c}x{kh}x{kw} window times one filter)" + (
            " + the filter's bias" if has_bias else "")
        if s.shape is not None:
            detail += f"; {output_size(s.shape[1], kh, stride[0], padding[0])[1].replace('out', 'H_out', 1)}"
        return text + detail
