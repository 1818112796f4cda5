"""Batch normalization layers over ``cnnlab.ops.batchnorm`` (PyTorch conventions).

``weight`` (gamma, ones) and ``bias`` (beta, zeros) are trainable; ``running_mean`` (zeros)
and ``running_var`` (ones) are buffers, updated only by ``forward(x, training=True)`` with
``running = (1 - momentum) * running + momentum * batch_stat`` (unbiased batch variance),
and used at inference.

Example:
    >>> bn = BatchNorm2d(3)
    >>> x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    >>> out = bn(x, training=True)
    >>> out.shape, out.dtype
    ((4, 3, 5, 5), dtype('float32'))
    >>> bool(np.allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-5))
    True
    >>> bn
    BatchNorm2d(3)
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_float_array, check_image_batch, check_positive_int, check_real
from cnnlab.layers.describe import num, shapes_of
from cnnlab.layers.base import DEFAULT_DTYPE, Layer, Parameter, as_rng
from cnnlab.engines import batchnorm_backward, batchnorm_forward


class _BatchNorm(Layer):
    """Shared code of BatchNorm1d and BatchNorm2d; subclasses implement ``_check_input``."""

    param_names = ("weight", "bias")
    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=DEFAULT_DTYPE, rng=None):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_positive_int(num_features, f"{name} num_features")
        self.eps = check_real(eps, f"{name} eps", 0.0, low_inclusive=False)
        self.momentum = check_real(momentum, f"{name} momentum", 0.0, 1.0)
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"{name} dtype must be float32 or float64; received {dtype}.")
        self._dtype = dtype
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None) -> None:
        """gamma = 1, beta = 0, running mean 0 and variance 1 (deterministic; ``rng`` is unused
        and accepted for a uniform interface)."""
        if rng is not None:
            as_rng(rng)  # type check only
        c, dtype = self.num_features, self._dtype
        self.weight = Parameter(np.ones(c, dtype=dtype), "weight")
        self.bias = Parameter(np.zeros(c, dtype=dtype), "bias")
        self.running_mean = np.zeros(c, dtype=dtype)
        self.running_var = np.ones(c, dtype=dtype)
        self._cache = None

    def _check_input(self, x: np.ndarray) -> None:
        raise NotImplementedError

    def forward(self, x: np.ndarray, *, training: bool = False, requires_grad: bool | None = None) -> np.ndarray:
        """Normalize with batch statistics (training, and update the running ones) or with the
        running statistics (inference).

        Raises:
            ValueError: wrong rank or channel count; training with 1 value per channel.
        """
        self._check_input(x)
        out, new_mean, new_var, cache = batchnorm_forward(
            x, self.weight.data, self.bias.data, self.running_mean, self.running_var,
            training=training, momentum=self.momentum, eps=self.eps,
        )  # raises before any state change
        if training:
            self.running_mean, self.running_var = new_mean, new_var
        self._set_cache(cache, out, training, requires_grad)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """Return d(loss)/dx and set ``weight.grad`` (dgamma) and ``bias.grad`` (dbeta)."""
        self._check_dout(dout)
        dx, dgamma, dbeta = batchnorm_backward(dout, self._cache)
        self.weight.grad, self.bias.grad = dgamma, dbeta
        return dx

    def astype(self, dtype) -> "_BatchNorm":
        super().astype(dtype)
        self._dtype = np.dtype(dtype)
        return self

    def get_config(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": str(self.weight.data.dtype)}

    def extra_repr(self) -> str:
        parts = [str(self.num_features)]
        if self.eps != 1e-5:
            parts.append(f"eps={self.eps}")
        if self.momentum != 0.1:
            parts.append(f"momentum={self.momentum}")
        if self.weight.data.dtype != np.dtype(DEFAULT_DTYPE):
            parts.append(f"dtype={self.weight.data.dtype}")
        return ", ".join(parts)

    needs_batch_statistics = True
    elementwise = True
    _unit = "channel"  # what is normalized: "channel" (BatchNorm2d) or "feature" (BatchNorm1d)

    def explain(self, input_shape=None) -> str:
        c, kind = self.num_features, type(self).__name__
        n_buf = sum(v.size for v in self.buffers().values())
        return (f"{kind}: normalizes each of the {c} {self._unit}s to zero mean and unit variance (batch statistics "
                f"while training, running averages at inference), then scales by gamma and shifts by beta"
                f"{shapes_of(self, input_shape).same}; 2*{c} = {num(self.num_parameters())} parameters "
                f"(plus {num(n_buf)} running-statistic values)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of images, per channel over (N, H, W).

    Args:
        num_features: number of channels C.
        eps: added to the variance before the square root.
        momentum: weight of the new batch statistic in the running average (PyTorch's meaning).
        dtype: float32 (default) or float64.
        rng: unused (initialization is deterministic); accepted like every layer with parameters.

    Shape:
        x, out: (N, C, H, W).
    """

    def _check_input(self, x: np.ndarray) -> None:
        check_image_batch(x, "BatchNorm2d", channels=self.num_features, dtype=self.weight.data.dtype)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[0] != self.num_features:
            raise ValueError(
                f"BatchNorm2d({self.num_features}) expected per-sample input of shape "
                f"({self.num_features}, H, W); received {input_shape}."
            )
        return input_shape


class BatchNorm1d(_BatchNorm):
    """Batch normalization of features, per feature over N (and L for (N, C, L) input).

    Args:
        num_features: number of features C.
        eps, momentum, dtype, rng: as BatchNorm2d.

    Shape:
        x, out: (N, C) or (N, C, L).
    """

    _unit = "feature"

    def _check_input(self, x: np.ndarray) -> None:
        check_float_array(x, "BatchNorm1d input", dtype=self.weight.data.dtype)
        if x.ndim not in (2, 3) or x.shape[1] != self.num_features:
            hint = " For images use BatchNorm2d." if x.ndim == 4 else ""
            raise ValueError(
                f"BatchNorm1d expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L); received {x.shape}.{hint}"
            )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        input_shape = tuple(input_shape)
        if len(input_shape) not in (1, 2) or input_shape[0] != self.num_features:
            raise ValueError(
                f"BatchNorm1d({self.num_features}) expected per-sample input of shape "
                f"({self.num_features},) or ({self.num_features}, L); received {input_shape}."
            )
        return input_shape
