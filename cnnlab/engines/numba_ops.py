"""The Numba engine's elementwise and pooling kernels: max pooling, ReLU, batch normalization,
and the optimizers' updates (``adam_update``, ``sgd_update``).

Each function takes the same arguments as its NumPy op and returns the same numbers (the
tests compare them bit for bit or to float rounding, as stated there); where the kernels do
not apply (small arrays, strided data, other layouts) it runs the NumPy op.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.engines import runtime
from cnnlab.ops import activation, batchnorm
from cnnlab.ops.pool import PoolCache, check_dout, pool_out_shape, prepare_pool2d

__all__ = ["maxpool2d_forward", "maxpool2d_backward", "relu_forward", "relu_backward", "batchnorm_forward",
           "batchnorm_backward", "adam_update", "sgd_update"]

#: below this many elements NumPy's one pass beats starting the compiled kernel's threads
_KERNEL_MIN_SIZE = 1 << 15


# ----- max pooling -------------------------------------------------------------------------------
def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """One compiled pass on every core; arguments and returns as ``cnnlab.ops.pool.maxpool2d_forward``."""
    kernel_size, stride, padding, out_shape = prepare_pool2d(x, kernel_size, stride, padding, "maxpool2d")
    (KH, KW), (sh, sw), (ph, pw) = kernel_size, stride, padding
    out = np.empty(out_shape, dtype=x.dtype)  # (N, C, H_out, W_out)
    argmax = np.empty(out_shape, dtype=np.uint8 if KH * KW <= 256 else np.intp)
    runtime.kernels().maxpool_forward(np.ascontiguousarray(x), KH, KW, sh, sw, ph, pw, x.dtype.type(0), out, argmax)
    return out, PoolCache(x.shape, x.dtype, kernel_size, stride, padding, "numba", argmax)


def maxpool2d_backward(dout, cache: PoolCache):
    """Arguments and returns as ``cnnlab.ops.pool.maxpool2d_backward``."""
    check_dout(dout, cache, pool_out_shape(cache), "maxpool2d_backward")
    (KH, KW), (sh, sw), (ph, pw) = cache.kernel_size, cache.stride, cache.padding
    dx = np.empty(cache.x_shape, dtype=dout.dtype)  # (N, C, H, W)
    runtime.kernels().maxpool_backward(np.ascontiguousarray(dout), cache.argmax, KH, KW, sh, sw, ph, pw, dx)
    return dx


# ----- ReLU --------------------------------------------------------------------------------------
def relu_forward(x: np.ndarray):
    """One parallel pass writing the output and the mask together (NumPy needs two on one core)."""
    if x.size >= _KERNEL_MIN_SIZE and x.flags.c_contiguous:
        out = np.empty_like(x)
        mask = np.empty(x.shape, dtype=bool)
        runtime.kernels().relu_forward(x.reshape(-1), out.reshape(-1), mask.reshape(-1))
        return out, mask
    return activation.relu_forward(x)


def relu_backward(dout: np.ndarray, cache: np.ndarray):
    """Arguments and returns as ``cnnlab.ops.activation.relu_backward``."""
    if (dout.size >= _KERNEL_MIN_SIZE and dout.flags.c_contiguous and cache.flags.c_contiguous
            and dout.shape == cache.shape):
        dx = np.empty_like(dout)
        runtime.kernels().relu_backward(dout.reshape(-1), cache.reshape(-1), dx.reshape(-1))
        return dx
    return activation.relu_backward(dout, cache)


# ----- batch normalization: training mode, channels on axis 1 ---------------------------------------
def batchnorm_forward(x, gamma, beta, running_mean, running_var, **kwargs):
    """``cnnlab.ops.batchnorm.batchnorm_forward`` with the batch statistics from one kernel call."""
    return batchnorm.batchnorm_forward(x, gamma, beta, running_mean, running_var, normalize=_normalize, **kwargs)


def batchnorm_backward(dout, cache):
    """Arguments and returns as ``cnnlab.ops.batchnorm.batchnorm_backward``."""
    training, xhat, scale, axes = cache  # scale = gamma * inv_std, broadcastable
    if training and _kernel_layout(dout, axes) and xhat.flags.c_contiguous and dout.dtype == xhat.dtype:
        C = dout.shape[1]
        dx, dgamma, dbeta = np.empty_like(dout), np.empty(C, dout.dtype), np.empty(C, dout.dtype)
        runtime.kernels().batchnorm_backward_train(_as_ncl(dout), _as_ncl(xhat), scale.reshape(C).astype(dout.dtype),
                                                   dgamma, dbeta, _as_ncl(dx))
        return dx, dgamma, dbeta
    return batchnorm.batchnorm_backward(dout, cache)


def _normalize(x, gamma, beta, eps, axes):
    """``(xhat, out, mean, var)`` from the kernel, or None where it does not apply."""
    return _forward_train_kernel(x, gamma, beta, eps) if _kernel_layout(x, axes) else None


def _kernel_layout(x: np.ndarray, axes: tuple[int, ...]) -> bool:
    """Whether the kernels take ``x``: reduced over every axis but 1, rank >= 3, C-contiguous.

    (N, C) input stays with NumPy: its channels are strided, one value per row.
    """
    return (x.ndim >= 3 and axes == (0, *range(2, x.ndim)) and x.flags.c_contiguous and x.size > 0
            and x.dtype in (np.float32, np.float64))


def _as_ncl(a: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, C, L), a view."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _forward_train_kernel(x, gamma, beta, eps):
    """One kernel call: ``(xhat, out, mean, var)``, mean and var with x's dtype, broadcastable.

    It sums in float64 (NumPy's path sums in x's dtype): the same values to float rounding.
    """
    C = x.shape[1]
    xhat, out = np.empty_like(x), np.empty_like(x)
    mean, var = np.empty(C), np.empty(C)  # float64
    runtime.kernels().batchnorm_forward_train(_as_ncl(x), gamma.astype(x.dtype), beta.astype(x.dtype), eps, mean,
                                              var, _as_ncl(xhat), _as_ncl(out))
    bshape = (1, C) + (1,) * (x.ndim - 2)
    return xhat, out, mean.astype(x.dtype).reshape(bshape), var.astype(x.dtype).reshape(bshape)


# ----- optimizer updates: one compiled pass per parameter ---------------------------------------------
#: below this many values an update stays with NumPy (a compiled call costs about as much)
_OPTIM_MIN_SIZE = 1 << 12
#: below this many values an update runs on the calling thread alone: waking the other threads,
#: asleep between kernels, costs 20-70 us, more than a serial pass over 18,432 values (conv2's weights)
_OPTIM_PARALLEL_SIZE = 1 << 16


def _flat_views(*arrays):
    """1-D views of same-shape, same-dtype, C-contiguous float arrays large enough for a kernel; else None."""
    a = arrays[0]
    if runtime.get_backend() != "numba" or a.size < _OPTIM_MIN_SIZE or a.dtype not in (np.float32, np.float64):
        return None
    if any(b.shape != a.shape or b.dtype != a.dtype or not b.flags.c_contiguous for b in arrays):
        return None
    return [b.reshape(-1) for b in arrays]


def adam_update(p, g, m, v, *, lr, beta1, beta2, eps, t, weight_decay, decoupled) -> bool:
    """Adam's (or AdamW's) step on one parameter in place, in one pass: the same bits as
    ``cnnlab.training.optim.Adam``'s NumPy path. Returns False, changing nothing, where the
    kernel does not apply (NumPy backend, small or strided arrays): the caller runs NumPy.

    Shape:
        p (the parameter's data), g (its gradient), m, v (Adam's moments): one shape.
    """
    flat = _flat_views(p, g, m, v)
    if flat is None:
        return False
    c = p.dtype.type  # each scalar rounded to the arrays' dtype, as NumPy 2 does with a Python float
    kernels = runtime.kernels()
    step = kernels.adam_step if p.size >= _OPTIM_PARALLEL_SIZE else kernels.adam_step_serial
    step(*flat, c(1 - beta1), c(beta2), c(1 - beta2), c(math.sqrt(1 - beta2**t)), c(eps), c(lr / (1 - beta1**t)),
         c(weight_decay), bool(decoupled), c(1 - lr * weight_decay))
    return True


def sgd_update(p, g, buf, *, lr, momentum, weight_decay, nesterov, first) -> bool:
    """SGD's step on one parameter in place, in one pass: the same bits as
    ``cnnlab.training.optim.SGD``'s NumPy path (``buf``: the momentum buffer, written in full
    when ``first``; any same-shape array when momentum is 0). False where the kernel does not apply.
    """
    flat = _flat_views(p, g, buf)
    if flat is None:
        return False
    c = p.dtype.type
    kernels = runtime.kernels()
    step = kernels.sgd_step if p.size >= _OPTIM_PARALLEL_SIZE else kernels.sgd_step_serial
    step(*flat, c(lr), c(momentum), c(weight_decay), bool(nesterov), bool(first))
    return True

