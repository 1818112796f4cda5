"""The one dispatch table: (op, engine) -> (forward, backward), and the entry points that use it.

An *engine* is one way to compute an op; all give the same numbers (the tests prove it):

* ``"naive"``: the loops of ``cnnlab.ops.reference`` (the test oracle; tiny inputs only).
* ``"numpy"``: the NumPy ops of ``cnnlab.ops``, with the faster stride-1 wide layout for
  convolution (``cnnlab.engines.numpy_conv``).
* ``"numba"``: compiled parallel loops around NumPy's matrix products
  (``cnnlab.engines.numba_conv``, ``cnnlab.engines.numba_ops``).

``impl=`` takes one of these names. Two older names stay accepted: ``"fast"``, the default
engine now (``"numba"`` when Numba is installed and ``CNNLAB_NO_NUMBA`` is not set; switch it
with ``cnnlab.engines.runtime.set_backend``), and ``"im2col"``, the plain op of
``cnnlab.ops.conv`` (classic columns at every stride; for pooling, the same as ``"numpy"``).
A cache records the name its forward was given, and its backward comes from the same row.

Example:
    >>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    >>> out, cache = maxpool2d_forward(x, 2, impl="naive")
    >>> out[0, 0].tolist(), cache.impl
    ([[5.0, 7.0], [13.0, 15.0]], 'naive')
    >>> lookup("maxpool2d", "numpy")[0].__module__
    'cnnlab.ops.pool'
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from cnnlab.engines import numba_conv, numba_ops, numpy_conv, runtime
from cnnlab.ops import activation, batchnorm, reference
from cnnlab.ops import conv as conv_op
from cnnlab.ops import pool as pool_op
from cnnlab.ops.conv import ConvCache, prepare_conv2d
from cnnlab.ops.pool import PoolCache
from cnnlab.ops.shapes import Pair, to_pair

__all__ = ["ENGINES", "IMPLS", "TABLE", "lookup", "resolve", "conv2d_forward", "conv2d_backward",
           "conv2d_forward_fast", "conv2d_backward_fast", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward", "relu_forward", "relu_backward", "batchnorm_forward",
           "batchnorm_backward", "ConvReLUPoolCache", "can_fuse_maxpool", "conv2d_relu_maxpool2d_forward",
           "conv2d_relu_maxpool2d_backward"]

#: the engines, slowest first
ENGINES = ("naive", "numpy", "numba")
#: every name ``impl=`` accepts: the engines and the two older names (see the module docstring)
IMPLS = ("fast", "im2col", "naive", "numpy", "numba")
_LABELS = {"conv2d": "convolution", "maxpool2d": "pooling", "avgpool2d": "pooling"}


def _naive_conv_backward(dout, cache, *, need_dx=True):
    dx, dw, db = reference.conv2d_backward_naive(dout, cache)
    return (dx if need_dx else None), dw, db


# ----- fused Conv -> ReLU -> MaxPool (NumPy: the three ops; Numba: one pass) ---------------------------
class ConvReLUPoolCache(NamedTuple):
    """What :func:`conv2d_relu_maxpool2d_backward` needs.

    Attributes:
        conv: the convolution's cache.
        pool_size: (KH, KW) of the pooling windows (stride = window, no padding).
        pooled: the block's output (N, F, Hp, Wp) (a reference).
        argmax: offset ``i*KW + j`` of each window's first maximum (N, F, Hp, Wp).
        parts: NumPy engine: ``(relu_mask, pool_cache)`` of the unfused ops; else None.
        engine: the engine that ran the forward (its backward is used).
    """

    conv: ConvCache
    pool_size: Pair
    pooled: np.ndarray
    argmax: np.ndarray
    parts: tuple | None = None
    engine: str = "numba"


def _fused_forward_numpy(x, w, b, stride, padding, pool_size, out_shape):
    out, conv_cache = numpy_conv.conv2d_forward(x, w, b, stride, padding)
    act, mask = activation.relu_forward(out)
    pooled, pool_cache = pool_op.maxpool2d_forward(act, pool_size)
    return pooled, ConvReLUPoolCache(conv_cache, pool_size, pooled, pool_cache.argmax, (mask, pool_cache), "numpy")


def _fused_backward_numpy(dout, cache, *, need_dx=True):
    mask, pool_cache = cache.parts
    dconv = activation.relu_backward(pool_op.maxpool2d_backward(dout, pool_cache), mask)  # (N, F, H_out, W_out)
    return numpy_conv.conv2d_backward(dconv, cache.conv, need_dx=need_dx)


def _fused_forward_numba(x, w, b, stride, padding, pool_size, out_shape):
    pooled, conv_cache, argmax = numba_conv.conv2d_relu_maxpool2d_forward(x, w, b, stride, padding, pool_size,
                                                                          out_shape)
    return pooled, ConvReLUPoolCache(conv_cache, pool_size, pooled, argmax, None, "numba")


#: (op, engine) -> (forward, backward): the ONE place that maps a choice to code
TABLE: dict[tuple[str, str], tuple[Callable, Callable]] = {
    ("conv2d", "naive"): (reference.conv2d_forward_naive, _naive_conv_backward),
    ("conv2d", "im2col"): (conv_op.conv2d_forward, conv_op.conv2d_backward),
    ("conv2d", "numpy"): (numpy_conv.conv2d_forward, numpy_conv.conv2d_backward),
    ("conv2d", "numba"): (numba_conv.conv2d_forward, numba_conv.conv2d_backward),
    ("maxpool2d", "naive"): (reference.maxpool2d_forward_naive, reference.maxpool2d_backward_naive),
    ("maxpool2d", "numpy"): (pool_op.maxpool2d_forward, pool_op.maxpool2d_backward),
    ("maxpool2d", "numba"): (numba_ops.maxpool2d_forward, numba_ops.maxpool2d_backward),
    ("avgpool2d", "naive"): (reference.avgpool2d_forward_naive, reference.avgpool2d_backward_naive),
    ("avgpool2d", "numpy"): (pool_op.avgpool2d_forward, pool_op.avgpool2d_backward),
    ("avgpool2d", "numba"): (pool_op.avgpool2d_forward, pool_op.avgpool2d_backward),  # no kernel: NumPy's
    ("relu", "numpy"): (activation.relu_forward, activation.relu_backward),
    ("relu", "numba"): (numba_ops.relu_forward, numba_ops.relu_backward),
    ("batchnorm", "numpy"): (batchnorm.batchnorm_forward, batchnorm.batchnorm_backward),
    ("batchnorm", "numba"): (numba_ops.batchnorm_forward, numba_ops.batchnorm_backward),
    ("conv2d_relu_maxpool2d", "numpy"): (_fused_forward_numpy, _fused_backward_numpy),
    ("conv2d_relu_maxpool2d", "numba"): (_fused_forward_numba, numba_conv.conv2d_relu_maxpool2d_backward),
}


def resolve(op: str, impl: str = "fast") -> str:
    """The engine (the table's column) that ``impl`` names for ``op``.

    Raises:
        ValueError: an unknown name (lists the known ones), or ``"numba"`` when it is unavailable.
    """
    if impl not in IMPLS:
        raise ValueError(f"unknown {_LABELS.get(op, op)} impl {impl!r}; expected one of "
                         f"{', '.join(map(repr, IMPLS))}.")
    if impl == "fast":
        return runtime.get_backend()
    if impl == "numba":
        runtime.require_numba()
    if (op, impl) not in TABLE:  # "im2col" for a pool, "naive" for an op without loops: its NumPy op
        return "numpy"
    return impl


def lookup(op: str, impl: str = "fast") -> tuple[Callable, Callable]:
    """``(forward, backward)`` of ``op`` for an ``impl`` name (see :func:`resolve`)."""
    return TABLE[(op, resolve(op, impl))]


# ----- convolution -------------------------------------------------------------------------------------
def conv2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1), padding=(0, 0),
                   *, impl: str = "fast") -> tuple[np.ndarray, ConvCache]:
    """``cnnlab.ops.conv.conv2d_forward`` run by the engine ``impl`` names (same numbers).

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). b: (F,). out: (N, F, H_out, W_out).
    """
    forward, _ = lookup("conv2d", impl)
    out, cache = forward(x, w, b, stride, padding)
    return out, (cache if cache.impl == impl else cache._replace(impl=impl))


def conv2d_backward(dout: np.ndarray, cache: ConvCache, *, need_dx: bool = True):
    """``(dx, dw, db)`` by the engine the cache's forward was asked for.

    Shape:
        dout: (N, F, H_out, W_out). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    if not isinstance(cache, ConvCache):
        raise TypeError(f"conv2d_backward expected the cache returned by conv2d_forward; received "
                        f"{type(cache).__name__}.")
    return lookup("conv2d", cache.impl)[1](dout, cache, need_dx=need_dx)


def conv2d_forward_fast(x, w, b, stride=(1, 1), padding=(0, 0)):
    """:func:`conv2d_forward` with the default engine."""
    return conv2d_forward(x, w, b, stride, padding, impl="fast")


def conv2d_backward_fast(dout, cache, *, need_dx: bool = True):
    """The default engine's backward, for a cache from any engine."""
    return lookup("conv2d", "fast")[1](dout, cache, need_dx=need_dx)


# ----- pooling -------------------------------------------------------------------------------------------
def _pool_forward(op, x, kernel_size, stride, padding, impl):
    out, cache = lookup(op, impl)[0](x, kernel_size, stride, padding)
    return out, (cache if cache.impl == impl else cache._replace(impl=impl))


def _pool_backward(op, dout, cache):
    pool_op.check_cache(cache, f"{op}_backward", op[:3])
    return lookup(op, cache.impl)[1](dout, cache)


def maxpool2d_forward(x, kernel_size, stride=None, padding=0, *, impl: str = "fast") -> tuple[np.ndarray, PoolCache]:
    """``cnnlab.ops.pool.maxpool2d_forward`` by engine. Shape: x (N, C, H, W) -> (N, C, H_out, W_out)."""
    return _pool_forward("maxpool2d", x, kernel_size, stride, padding, impl)


def maxpool2d_backward(dout, cache: PoolCache) -> np.ndarray:
    """Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W)."""
    return _pool_backward("maxpool2d", dout, cache)


def avgpool2d_forward(x, kernel_size, stride=None, padding=0, *, impl: str = "fast") -> tuple[np.ndarray, PoolCache]:
    """``cnnlab.ops.pool.avgpool2d_forward`` by engine. Shape: x (N, C, H, W) -> (N, C, H_out, W_out)."""
    return _pool_forward("avgpool2d", x, kernel_size, stride, padding, impl)


def avgpool2d_backward(dout, cache: PoolCache) -> np.ndarray:
    """Shape: dout (N, C, H_out, W_out) -> dx (N, C, H, W)."""
    return _pool_backward("avgpool2d", dout, cache)


# ----- ReLU and batch normalization (default engine) -----------------------------------------------------------
def relu_forward(x):
    """``cnnlab.ops.activation.relu_forward`` by the default engine."""
    return lookup("relu")[0](x)


def relu_backward(dout, cache):
    """``cnnlab.ops.activation.relu_backward`` by the default engine."""
    return lookup("relu")[1](dout, cache)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, **kwargs):
    """``cnnlab.ops.batchnorm.batchnorm_forward`` by the default engine."""
    return lookup("batchnorm")[0](x, gamma, beta, running_mean, running_var, **kwargs)


def batchnorm_backward(dout, cache):
    """``cnnlab.ops.batchnorm.batchnorm_backward`` by the default engine."""
    return lookup("batchnorm")[1](dout, cache)


# ----- fused Conv -> ReLU -> MaxPool ----------------------------------------------------------------------------
def can_fuse_maxpool(conv_out_hw: tuple[int, int], kernel_size: Pair, stride: Pair, padding: Pair) -> bool:
    """Whether max pooling with these settings can be fused after a conv of output size (H, W):
    its windows must tile the map exactly (stride == kernel, no padding, sizes divisible)."""
    (H, W), (KH, KW) = conv_out_hw, kernel_size
    return tuple(stride) == (KH, KW) and tuple(padding) == (0, 0) and H % KH == 0 and W % KW == 0


def conv2d_relu_maxpool2d_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride=(1, 1),
                                  padding=(0, 0), pool_size=2):
    """``maxpool2d(relu(conv2d(x, w, b)), pool_size)`` as one op, by the default engine.

    The same numbers as the three ops in a row, bit for bit (the same GEMM, the same float
    adds, the same first-maximum rule); the Numba engine runs bias, ReLU and pooling as one
    pass over the GEMM output.

    Args:
        x, w, b, stride, padding: as :func:`conv2d_forward`.
        pool_size: int or (KH, KW) of the max pooling; its windows must tile the conv output
            (stride = window, no padding, see :func:`can_fuse_maxpool`).

    Returns:
        ``(pooled, cache)``.

    Shape:
        x: (N, C, H, W). w: (F, C, KH, KW). pooled: (N, F, H_out // PH, W_out // PW).

    Raises:
        ValueError: windows that do not tile the conv output, and the errors of conv2d_forward.
    """
    stride, padding, out_shape = prepare_conv2d(x, w, b, stride, padding)
    pool_size = to_pair(pool_size, "pool_size")
    if not can_fuse_maxpool(out_shape[2:], pool_size, pool_size, (0, 0)):
        raise ValueError(f"conv2d_relu_maxpool2d needs pooling windows that tile the conv output "
                         f"{out_shape[2:]}; received pool_size={pool_size}. Run the three ops separately.")
    return lookup("conv2d_relu_maxpool2d")[0](x, w, b, stride, padding, pool_size, out_shape)


def conv2d_relu_maxpool2d_backward(dout: np.ndarray, cache: ConvReLUPoolCache, *, need_dx: bool = True):
    """Backward of :func:`conv2d_relu_maxpool2d_forward`: ``(dx, dw, db)`` (``dx`` None unless need_dx).

    Shape:
        dout: (N, F, Hp, Wp) (the pooled output's). dx: (N, C, H, W). dw: (F, C, KH, KW). db: (F,).
    """
    if not isinstance(cache, ConvReLUPoolCache):
        raise TypeError(f"conv2d_relu_maxpool2d_backward expected the cache returned by "
                        f"conv2d_relu_maxpool2d_forward; received {type(cache).__name__}.")
    pooled = cache.pooled
    if not isinstance(dout, np.ndarray) or dout.shape != pooled.shape:
        got = dout.shape if isinstance(dout, np.ndarray) else type(dout).__name__
        raise ValueError(f"conv2d_relu_maxpool2d_backward expected dout of shape {pooled.shape} (the forward "
                         f"output's); received {got}.")
    if dout.dtype != pooled.dtype:
        raise TypeError(f"conv2d_relu_maxpool2d_backward expected dout of dtype {pooled.dtype}; received {dout.dtype}.")
    return TABLE[("conv2d_relu_maxpool2d", cache.engine)][1](dout, cache, need_dx=need_dx)
