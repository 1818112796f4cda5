"""Batch normalization seen on a real batch: each channel's activations before and after
``cnnlab.layers.BatchNorm2d`` (training mode, gamma = 1, beta = 0), with their mean and
standard deviation written on the histograms.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import finish, new_figure
from cnnlab.layers import BatchNorm2d

__all__ = ["batchnorm_numbers", "batchnorm_figure"]


def batchnorm_numbers(x) -> dict[str, np.ndarray]:
    """One training-mode step of a fresh ``BatchNorm2d`` on a batch, and per-channel statistics.

    Args:
        x: activations (N, C, H, W).

    Returns:
        ``before`` and ``after`` (N, C, H, W) float64; ``mean_before``, ``std_before``,
        ``mean_after``, ``std_after`` (C,): over the batch and both spatial axes, the std
        biased (divide by N*H*W) as BatchNorm itself normalizes.

    Example:
        >>> x = np.random.default_rng(0).normal(5.0, 3.0, (8, 2, 4, 4))
        >>> d = batchnorm_numbers(x)
        >>> np.round(d["mean_after"], 6).tolist(), np.round(d["std_after"], 3).tolist()
        ([0.0, 0.0], [1.0, 1.0])
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"batchnorm_numbers expected activations (N, C, H, W); received shape {x.shape}.")
    bn = BatchNorm2d(x.shape[1], dtype=np.float64)
    after = bn(x, training=True)
    axes = (0, 2, 3)
    return {"before": x, "after": after, "mean_before": x.mean(axis=axes), "std_before": x.std(axis=axes),
            "mean_after": after.mean(axis=axes), "std_after": after.std(axis=axes)}


def batchnorm_figure(x, *, channel_names=None, save=None):
    """Histograms per channel: the activations before (top row, one shared axis: the channels'
    scales differ) and after batch normalization (bottom row: every channel near mean 0, std 1).

    Args:
        x: activations (N, C, H, W), a few channels.
        channel_names: optional names of the C channels.
        save: optional PNG/SVG path.

    Returns:
        the Figure (2 x C panels).
    """
    d = batchnorm_numbers(x)
    c = d["before"].shape[1]
    names = channel_names or [f"channel {k}" for k in range(c)]
    fig = new_figure(3.6 * c + 0.6, 6.4)
    axes = fig.subplots(2, c, squeeze=False, sharey=True)
    for row, key, color in ((0, "before", "tab:gray"), (1, "after", "tab:green")):
        lo, hi = float(d[key].min()), float(d[key].max())
        for k in range(c):
            _histogram(axes[row, k], d[key][:, k].ravel(), (lo, hi), d[f"mean_{key}"][k], d[f"std_{key}"][k], color)
            axes[row, k].set_title(f"{names[k]}: {key}", fontsize=10)
        axes[row, 0].set_ylabel("count of values (log)")
    axes[0, 0].set_ylim(0.7, 2.0 * d["before"][:, 0].size)
    n, _, h, w = d["before"].shape
    fig.suptitle(f"BatchNorm2d on a batch of {n} ({c} channels of {h}x{w}): each channel is shifted by its own "
                 f"mean and divided by its own std", fontsize=12)
    return finish(fig, save)


def _histogram(ax, values: np.ndarray, span: tuple[float, float], mean: float, std: float, color: str) -> None:
    ax.hist(values, bins=40, range=span, color=color)
    ax.set_yscale("log")  # MNIST's blank background piles up at one value; a log count keeps the rest visible
    ax.axvline(mean, color="black", lw=1.5)
    ax.axvspan(mean - std, mean + std, color="gold", alpha=0.25)
    ax.text(0.97, 0.95, f"mean {round(mean, 3) + 0.0:+.3f}\nstd  {std:.3f}", transform=ax.transAxes, ha="right", va="top", fontsize=10,
            family="monospace", bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none"})
    ax.set_xlabel("activation (black: mean; band: mean +- std)", fontsize=8)
