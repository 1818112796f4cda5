"""Batch normalization (Ioffe & Szegedy, 2015) with PyTorch's conventions, as a pure op.

Per channel ``c`` (axis 1), over the batch and any spatial axes::

    training:   out = gamma * (x - mean_B) / sqrt(var_B + eps) + beta
    inference:  out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta

``var_B`` is the biased batch variance (divide by m, the number of values per channel), but
the running variance is updated with the unbiased one (divide by m - 1), and
``running = (1 - momentum) * running + momentum * batch_stat``: exactly what
``torch.nn.BatchNorm2d`` does. The op never mutates its inputs; it returns the new running
statistics and the layer stores them.

With Numba (``cnnlab.engines.runtime``), training-mode input of rank >= 3 (channels on axis 1,
C-contiguous) takes two compiled kernels, split over the channels: the statistics and the
normalization in one call, both gradients in the other; they sum in float64.

Example:
    >>> x = np.array([[1.0], [3.0]])  # (N=2, C=1)
    >>> g, b, rm, rv = np.ones(1), np.zeros(1), np.zeros(1), np.ones(1)
    >>> out, rm, rv, cache = batchnorm_forward(x, g, b, rm, rv, training=True)
    >>> np.round(out.ravel(), 4).tolist(), rm.tolist(), rv.tolist()
    ([-1.0, 1.0], [0.2], [1.1])
"""
from __future__ import annotations

import math

import numpy as np



def _reduce_axes(x: np.ndarray, axes) -> tuple[int, ...]:
    if axes is None:
        return (0, *range(2, x.ndim))  # every axis but the channel axis 1
    return tuple(a % x.ndim for a in axes)


def _stat_shape(x: np.ndarray, axes: tuple[int, ...]) -> tuple[int, ...]:
    """Shape that broadcasts a per-channel vector against ``x``: 1 on each reduced axis."""
    return tuple(1 if i in axes else n for i, n in enumerate(x.shape))


def batchnorm_forward(
    x: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    *,
    training: bool,
    momentum: float = 0.1,
    eps: float = 1e-5,
    axes: tuple[int, ...] | None = None,
    normalize=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Normalize each channel, scale by ``gamma`` and shift by ``beta``.

    Args:
        x: input; channels on axis 1.
        gamma, beta: per-channel scale and shift.
        running_mean, running_var: running statistics (used at inference, updated in training).
        training: batch statistics (True) or running statistics (False).
        momentum: weight of the new batch statistic in the running average.
        eps: added to the variance before the square root.
        axes: axes to reduce over; default every axis but 1, i.e. (0,) for (N, C) and
            (0, 2, 3) for (N, C, H, W).
        normalize: training mode only: ``fn(x, gamma, beta, eps, axes) -> (xhat, out, mean,
            var)`` or None; an engine's faster route to the same numbers (``cnnlab.engines``);
            None (or a None result) runs the NumPy lines below.

    Returns:
        ``(out, new_running_mean, new_running_var, cache)``. At inference the running
        statistics are returned unchanged (the same arrays).

    Raises:
        ValueError: in training mode with a single value per channel (the variance would be
            0 and the unbiased variance undefined), as PyTorch.

    Shape:
        x, out: (N, C) or (N, C, H, W) (any rank >= 2).
        gamma, beta, running_mean, running_var: (C,).
    """
    momentum, eps = float(momentum), float(eps)  # Python floats never upcast float32 arrays
    axes = _reduce_axes(x, axes)
    bshape = _stat_shape(x, axes)
    g = gamma.reshape(bshape)  # (1, C, 1, 1) for NCHW, (1, C) for (N, C)
    if not training:
        inv_std = 1 / np.sqrt(running_var + eps)
        xhat = (x - running_mean.reshape(bshape)) * inv_std.reshape(bshape)
        out = xhat * g + beta.reshape(bshape)
        return out, running_mean, running_var, (False, xhat, (gamma * inv_std).reshape(bshape), axes)

    m = math.prod(x.shape[a] for a in axes)
    if m <= 1:
        raise ValueError(
            f"batch norm in training mode needs more than 1 value per channel; received input of "
            f"shape {x.shape} (1 value per channel). Use a batch size > 1, or training=False."
        )
    fast = normalize(x, gamma, beta, eps, axes) if normalize is not None else None
    if fast is not None:
        xhat, out, mean, var = fast
        inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    else:
        mean = x.mean(axis=axes, keepdims=True)  # (1, C, 1, 1)
        xc = x - mean
        var = np.mean(xc * xc, axis=axes, keepdims=True)  # biased: normalizes the batch
        inv_std = 1 / np.sqrt(var + eps)
        xhat = xc * inv_std
        out = xhat * g + beta.reshape(bshape)
    # unbiased variance (m / (m - 1)) for the running estimate, as PyTorch
    new_mean = (1 - momentum) * running_mean + momentum * mean.reshape(running_mean.shape)
    new_var = (1 - momentum) * running_var + (momentum * m / (m - 1)) * var.reshape(running_var.shape)
    return out, new_mean, new_var, (True, xhat, g * inv_std, axes)


def batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of batch normalization with respect to ``x``, ``gamma`` and ``beta``.

    Training mode uses the compact formula (the mean and variance depend on x)::

        dx = gamma * inv_std / m * (m * dout - sum(dout) - xhat * sum(dout * xhat))

    Inference mode is a per-channel affine map: ``dx = dout * gamma * inv_std``.

    Returns:
        ``(dx, dgamma, dbeta)``.

    Shape:
        dout, dx: like x. dgamma, dbeta: (C,).
    """
    training, xhat, scale, axes = cache  # scale = gamma * inv_std, broadcastable
    dbeta = dout.sum(axis=axes)
    dgamma = np.sum(dout * xhat, axis=axes)
    if not training:
        return dout * scale, dgamma, dbeta
    bshape = scale.shape
    m = dout.size // dbeta.size
    dx = (scale / m) * (m * dout - dbeta.reshape(bshape) - xhat * dgamma.reshape(bshape))
    return dx, dgamma, dbeta
