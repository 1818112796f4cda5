"""Inverted dropout on a small grid: the random keep mask of ``cnnlab.ops.dropout``, and the kept
values scaled by ``1 / (1 - p)`` so the expected output equals the input.
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap

from cnnlab.lab.viz._common import finish, new_figure, show
from cnnlab.lab.viz._style import NONNEGATIVE
from cnnlab.ops.dropout import dropout_forward

__all__ = ["dropout_numbers", "dropout_figure"]


def dropout_numbers(x, p: float, seed: int = 0) -> dict:
    """One training-mode dropout of ``x`` with drop probability ``p``.

    Args:
        x: any array, e.g. (H, W); p: probability of dropping a unit, in [0, 1).
        seed: seeds the ``numpy.random.Generator`` the op draws its mask from.

    Returns:
        ``input``, ``output`` (float64), ``keep`` (bool mask), ``scale`` = 1 / (1 - p) and
        ``kept_fraction``.

    Example:
        >>> d = dropout_numbers(np.ones((4, 4)), 0.5)
        >>> d["scale"], sorted(set(d["output"].ravel().tolist()))
        (2.0, [0.0, 2.0])
    """
    x = np.asarray(x, dtype=np.float64)
    out, cache = dropout_forward(x, p, np.random.default_rng(seed), training=True)
    keep = np.ones(x.shape, dtype=bool) if cache is None else cache[0]
    return {"input": x, "output": out, "keep": keep, "scale": 1.0 / (1.0 - p), "kept_fraction": float(keep.mean()),
            "p": float(p)}


def dropout_figure(x, ps=(0.5, 0.2), *, seed: int = 0, save=None):
    """One row per drop probability: input, keep mask, output, and output against input.

    Args:
        x: (H, W) small grid (its numbers are written on the cells).
        ps: drop probabilities, one row each.
        seed: seed of every row's mask.
        save: optional PNG/SVG path.

    Returns:
        the Figure (len(ps) x 4 panels).
    """
    x = np.asarray(x, dtype=np.float64)
    fig = new_figure(17, 4.2 * len(ps))
    axes = fig.subplots(len(ps), 4, squeeze=False, width_ratios=[1, 1, 1, 1.1])
    top = float(x.max()) / (1 - max(ps))  # one colour scale for every input and output
    for row, p in zip(axes, ps):
        _row(row, dropout_numbers(x, p, seed), top)
    fig.suptitle("inverted dropout (training mode): drop each value with probability p, multiply the kept ones "
                 "by 1/(1-p); at inference nothing is dropped or scaled", fontsize=12)
    return finish(fig, save)


def _row(axes, d: dict, top: float) -> None:
    p, scale, keep = d["p"], d["scale"], d["keep"]
    show(axes[0], d["input"], title="input x", cmap=NONNEGATIVE, vmin=0, vmax=top, colorbar="value (0 = white)",
         numbers="{:.1f}", fontsize=10)
    im = axes[1].imshow(keep.astype(float), cmap=ListedColormap(["black", "white"]), vmin=0, vmax=1,
                        interpolation="nearest")
    cb = axes[1].figure.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03, ticks=[0.25, 0.75])
    cb.ax.set_yticklabels(["dropped", "kept"], fontsize=8)
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    for (r, c), k in np.ndenumerate(keep):  # what each cell's value is multiplied by
        axes[1].text(c, r, f"x{scale:.4g}" if k else "0", ha="center", va="center", fontsize=10,
                     color="black" if k else "white")
    for k in range(1, keep.shape[0]):
        axes[1].axhline(k - 0.5, color="gray", lw=0.5)
    for k in range(1, keep.shape[1]):
        axes[1].axvline(k - 0.5, color="gray", lw=0.5)
    axes[1].set_title(f"keep mask, p = {p:g}: kept {int(keep.sum())} of {keep.size} "
                      f"({d['kept_fraction']:.0%})", fontsize=10)
    show(axes[2], d["output"], title=f"output = x * mask / (1 - {p:g}) = x * mask * {scale:.4g}",
         cmap=NONNEGATIVE, vmin=0, vmax=top, colorbar="value (0 = white)", numbers="{:.4g}", fontsize=10)
    _scatter(axes[3], d)


def _scatter(ax, d: dict) -> None:
    x, out, keep, scale = d["input"].ravel(), d["output"].ravel(), d["keep"].ravel(), d["scale"]
    ax.scatter(x[keep], out[keep], color="tab:green", s=18, label=f"kept: output = {scale:.4g} * x")
    ax.scatter(x[~keep], out[~keep], color="tab:red", marker="x", s=18, label="dropped: output = 0")
    t = np.array([0.0, float(x.max())])
    ax.plot(t, t * scale, color="tab:green", lw=1)
    ax.plot(t, t, color="gray", ls="--", lw=1, label="output = x (inference)")
    ax.set_xlabel("input value x")
    ax.set_ylabel("output value")
    ax.set_title(f"scale 1/(1-p) = {scale:.4g}: mean in {x.mean():.3g}, mean out {out.mean():.3g}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
