"""Fully connected layer over ``cnnlab.ops.dense``.

Example:
    >>> layer = Dense(4, 3, rng=0)
    >>> layer.weight.shape, layer.bias.shape
    ((4, 3), (3,))
    >>> layer(np.ones((2, 4), dtype=np.float32)).shape
    (2, 3)
    >>> layer
    Dense(4, 3)
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_float_array, check_positive_int
from cnnlab.layers.initializers import get_initializer, initializer_name
from cnnlab.layers.describe import num, shapes_of
from cnnlab.layers.base import DEFAULT_DTYPE, Layer, Parameter, as_rng
from cnnlab.ops.dense import dense_backward, dense_forward


class Dense(Layer):
    """Affine layer ``out = x @ weight + bias``.

    ``weight`` has shape (in_features, out_features), as in the tutorials and Keras; this is
    the TRANSPOSE of ``torch.nn.Linear.weight`` (out_features, in_features): to copy weights
    from PyTorch use ``linear.weight.detach().numpy().T``.

    Args:
        in_features: size of each input sample D_in.
        out_features: size of each output sample D_out.
        bias: whether to add a learned bias (initialized to zeros).
        weight_init: initializer name (see ``cnnlab.layers.initializers``) or function
            ``init(shape, fan_in, fan_out, rng, dtype)``; He normal by default (suits ReLU).
        dtype: float32 (default) or float64.
        rng: Generator, int seed or None, used by ``reset_parameters``.

    Shape:
        x: (N, D_in). out: (N, D_out). weight: (D_in, D_out). bias: (D_out,).
    """

    param_names = ("weight", "bias")

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 weight_init="he_normal", dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        self.in_features = check_positive_int(in_features, "Dense in_features")
        self.out_features = check_positive_int(out_features, "Dense out_features")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"Dense bias must be True or False; received {bias!r}.")
        self.use_bias = bool(bias)
        self._init = get_initializer(weight_init)
        self.weight_init = weight_init
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"Dense dtype must be float32 or float64; received {dtype}.")
        self._dtype = dtype
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """Draw the weight with ``weight_init`` (fan_in = D_in, fan_out = D_out); bias = 0."""
        rng = as_rng(rng)
        shape = (self.in_features, self.out_features)
        w = self._init(shape, self.in_features, self.out_features, rng, self._dtype)
        if not isinstance(w, np.ndarray) or w.shape != shape or w.dtype != self._dtype:
            got = f"{w.shape} {w.dtype}" if isinstance(w, np.ndarray) else type(w).__name__
            raise ValueError(f"Dense weight_init must return an array of shape {shape} and dtype "
                             f"{self._dtype}; received {got}.")
        self.weight = Parameter(w, "weight")
        self.bias = Parameter(np.zeros(self.out_features, dtype=self._dtype), "bias") if self.use_bias else None
        self._cache = None

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """``x @ weight + bias``.

        Raises:
            TypeError: non-float input or a dtype different from the weights'.
            ValueError: input not of shape (N, in_features).
        """
        check_float_array(x, "Dense input", dtype=self.weight.data.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = ""
            if x.ndim > 2:
                hint = (f" Put a Flatten() layer before Dense to turn (N, {', '.join(map(str, x.shape[1:]))}) "
                        f"into (N, {int(np.prod(x.shape[1:]))}).")
            elif x.ndim == 1:
                hint = " For a single sample add the batch axis: x[None]."
            raise ValueError(f"Dense expected input of shape (N, {self.in_features}); received {x.shape}.{hint}")
        b = self.bias.data if self.bias is not None else None
        out, cache = dense_forward(x, self.weight.data, b)
        self._set_cache(cache, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return d(loss)/dx and set ``weight.grad`` and ``bias.grad``."""
        self._check_dout(dout)
        dx, dw, db = dense_backward(dout, self._require_cache())
        self.weight.grad = dw
        if self.bias is not None:
            self.bias.grad = db
        return dx

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.in_features,):
            hint = " Put a Flatten() layer before Dense." if len(input_shape) > 1 else ""
            raise ValueError(
                f"Dense({self.in_features}, {self.out_features}) expected per-sample input of shape "
                f"({self.in_features},); received {tuple(input_shape)}.{hint}"
            )
        return (self.out_features,)

    def astype(self, dtype) -> "Dense":
        super().astype(dtype)
        self._dtype = np.dtype(dtype)
        return self

    def _init_name(self) -> str:
        return initializer_name(self.weight_init, "Dense")

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.use_bias,
                "weight_init": self._init_name(), "dtype": str(self.weight.data.dtype)}

    def extra_repr(self) -> str:
        parts = [str(self.in_features), str(self.out_features)]
        if not self.use_bias:
            parts.append("bias=False")
        if self.weight_init != "he_normal":
            name = self.weight_init if isinstance(self.weight_init, str) else getattr(self.weight_init, "__name__", "?")
            parts.append(f"weight_init={name!r}")
        if self.weight.data.dtype != np.dtype(DEFAULT_DTYPE):
            parts.append(f"dtype={self.weight.data.dtype}")
        return ", ".join(parts)

    keeps_spatial_layout = False

    def explain(self, input_shape=None) -> str:
        s = shapes_of(self, input_shape)
        nin, nout, has_bias = self.in_features, self.out_features, self.bias is not None
        count = f"{nin}*{nout} weights" + (f" + {nout} biases" if has_bias else "")
        return (f"Dense: connects all {num(nin)} inputs to each of {num(nout)} outputs{s.arrow}; "
                f"{count} = {num(self.num_parameters())} parameters")
