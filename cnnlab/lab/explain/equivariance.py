"""Translation equivariance: shift the input and the feature map shifts; pooling hides small shifts."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.ops.activation import relu_forward
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import maxpool2d_forward


def shift_image(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the last two axes by (dy, dx) pixels, filling the uncovered border with zeros.

    Example:
        >>> shift_image(np.arange(4.0).reshape(2, 2), 0, 1).tolist()
        [[0.0, 0.0], [0.0, 2.0]]
    """
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    src_r = slice(max(0, -dy), h - max(0, dy))
    dst_r = slice(max(0, dy), h - max(0, -dy))
    src_c = slice(max(0, -dx), w - max(0, dx))
    dst_c = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


@dataclass
class EquivarianceResult:
    """Numbers (and the arrays for the figure) of :func:`translation_equivariance`.

    Attributes:
        conv_max_error: largest ``|conv(shift(x)) - shift(conv(x))|`` over all shifts,
            away from the border the shift wipes out (0 up to rounding: equivariance).
        conv_unchanged_fraction: fraction of active conv outputs (nonzero in either map)
            whose value at the same position is unchanged by the shift (small).
        pool_unchanged_fraction: the same fraction after ReLU and max pooling (larger: the
            local invariance pooling adds).
        conv_relative_change, pool_relative_change: ``||after - before|| / ||before||`` at the
            same positions, for the ReLU map and the pooled map (pooling makes it smaller).
        per_shift: one dict of these numbers per (dy, dx) of ``shifts``, then one for ``shift``.
        shift: the (dy, dx) of the arrays below (the exercise's 5 pixels by default).
        image, shifted, fmap, fmap_shifted, pooled, pooled_shifted: the arrays of ``shift``,
            for pictures (2-D).
    """

    conv_max_error: float
    conv_unchanged_fraction: float
    pool_unchanged_fraction: float
    conv_relative_change: float = 0.0
    pool_relative_change: float = 0.0
    per_shift: list = field(default_factory=list)
    shift: tuple = (5, 0)
    image: np.ndarray | None = None
    shifted: np.ndarray | None = None
    fmap: np.ndarray | None = None
    fmap_shifted: np.ndarray | None = None
    pooled: np.ndarray | None = None
    pooled_shifted: np.ndarray | None = None


def _relative_change(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(a))
    return float(np.linalg.norm(b - a) / scale) if scale > 0 else 0.0


def translation_equivariance(image, kernel, *, shift=(5, 0), shifts=((0, 1), (1, 0), (0, -1), (-1, 0)),
                             pool_size: int = 2, padding: int | None = None, tol: float = 1e-9) -> EquivarianceResult:
    """Measure that convolution commutes with shifts, and how much max pooling hides them.

    For each shift the image is moved by (dy, dx) with zero fill (:func:`shift_image`) and
    passed through cnnlab's ``conv2d_forward`` (padding keeps the size), ReLU and
    ``maxpool2d_forward``. The averaged fractions are over the small ``shifts`` (what pooling
    can hide); ``shift`` (5 pixels down, as in the tutorial's exercise) gives the arrays for
    pictures and is measured too.

    Args:
        image: 2-D float image (H, W); a border of zeros at least ``max shift`` wide makes the
            zero-filled shift lossless.
        kernel: 2-D filter (KH, KW), odd sizes.
        shift: the (dy, dx) whose arrays the result keeps.
        shifts: small (dy, dx) pixel shifts to average over.
        pool_size: max-pool window and stride.
        padding: conv padding; default ``KH // 2`` ("same").
        tol: two values within ``tol`` count as unchanged.

    Returns:
        an :class:`EquivarianceResult`.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"translation_equivariance expected a 2-D image and a 2-D kernel; received shapes "
                         f"{image.shape} and {kernel.shape}.")
    pad = kernel.shape[0] // 2 if padding is None else padding
    w = kernel[None, None]  # (1, 1, KH, KW)
    b = np.zeros(1)

    def features(x2d):
        fmap, _ = conv2d_forward(x2d[None, None], w, b, stride=(1, 1), padding=(pad, pad))  # (1, 1, H, W)
        act, _ = relu_forward(fmap)
        pooled, _ = maxpool2d_forward(act, (pool_size, pool_size), (pool_size, pool_size))
        return fmap[0, 0], act[0, 0], pooled[0, 0]

    fmap, act, pooled = features(image)
    per_shift, shown = [], None
    for dy, dx in [tuple(s) for s in shifts] + [tuple(shift)]:
        shifted = shift_image(image, dy, dx)
        fmap_s, act_s, pooled_s = features(shifted)
        # Compare away from the strips the zero fill and the image's edge disturb.
        m = max(abs(dy), abs(dx)) + kernel.shape[0] // 2
        inside = np.abs(fmap_s - shift_image(fmap, dy, dx))[m:image.shape[0] - m, m:image.shape[1] - m]
        err = float(inside.max()) if inside.size else 0.0
        active = (np.abs(act) > tol) | (np.abs(act_s) > tol)
        conv_same = float(np.mean(np.abs(act - act_s)[active] <= tol)) if active.any() else 1.0
        pactive = (np.abs(pooled) > tol) | (np.abs(pooled_s) > tol)
        pool_same = float(np.mean(np.abs(pooled - pooled_s)[pactive] <= tol)) if pactive.any() else 1.0
        per_shift.append({"shift": (int(dy), int(dx)), "conv_max_error": err,
                          "conv_unchanged_fraction": conv_same, "pool_unchanged_fraction": pool_same,
                          "conv_relative_change": _relative_change(act, act_s),
                          "pool_relative_change": _relative_change(pooled, pooled_s)})
        shown = (shifted, fmap_s, pooled_s)  # the last: ``shift``
    small = per_shift[:len(shifts)] or per_shift
    return EquivarianceResult(
        conv_max_error=max(p["conv_max_error"] for p in per_shift),
        conv_unchanged_fraction=float(np.mean([p["conv_unchanged_fraction"] for p in small])),
        pool_unchanged_fraction=float(np.mean([p["pool_unchanged_fraction"] for p in small])),
        conv_relative_change=float(np.mean([p["conv_relative_change"] for p in small])),
        pool_relative_change=float(np.mean([p["pool_relative_change"] for p in small])),
        per_shift=per_shift, shift=(int(shift[0]), int(shift[1])), image=image, shifted=shown[0], fmap=fmap,
        fmap_shifted=shown[1], pooled=pooled, pooled_shifted=shown[2])
