"""Translation equivariance (shift the input, the feature map shifts the same way) and the
local invariance max pooling adds, from ``cnnlab.lab.explain.translation_equivariance``.

Top row: ``conv(shift(x))`` beside ``shift(conv(x))`` on one colour scale, and their
difference on a symmetric scale of its own with its largest magnitude written (zero inside;
only the border, where the shift pushed the image out of the frame, can differ). Bottom row:
what max pooling keeps of the shift, a changed / unchanged panel with a two-colour legend,
and the fractions for every shift tried.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.explain import shift_image
from cnnlab.lab.viz._common import finish, new_figure, show
from cnnlab.lab.viz._style import INPUT_CMAP, INPUT_NOTE, binary_legend, input_norm, value_style

__all__ = ["equivariance_figure", "shift_words"]


def shift_words(dy: int, dx: int) -> str:
    """``(5, 0)`` -> ``"5 px down"``; ``(-1, 2)`` -> ``"1 px up, 2 px right"``.

    Example:
        >>> shift_words(5, 0), shift_words(-1, 2)
        ('5 px down', '1 px up, 2 px right')
    """
    parts = [f"{abs(v)} px {(neg if v < 0 else pos)}" for v, neg, pos in ((dy, "up", "down"), (dx, "left", "right"))
             if v]
    return ", ".join(parts) or "no shift"


def _imshow(ax, a, title: str, colorbar: str, **style):
    im = ax.imshow(a, interpolation="nearest", **style)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label(colorbar, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return im


def _top_row(axes, r, words: str) -> np.ndarray:
    dy, dx = r.shift
    moved = shift_image(r.fmap, dy, dx)
    diff = r.fmap_shifted - moved
    pixels = {"cmap": INPUT_CMAP, "norm": input_norm(r.image, r.shifted)}
    _imshow(axes[0], r.image, f"input x\n({INPUT_NOTE})", "pixel", **pixels)
    _imshow(axes[1], r.shifted, f"shift(x): {words}", "pixel", **pixels)
    style = value_style(r.fmap_shifted, moved)  # one scale for the two maps that should agree
    _imshow(axes[2], r.fmap_shifted, "conv(shift(x))", "value", **style)
    _imshow(axes[3], moved, "shift(conv(x))", "value", **style)
    biggest = float(np.abs(diff).max())
    where = "nonzero only at the border" if biggest > 0 else "equal everywhere"
    _imshow(axes[4], diff, f"conv(shift(x)) - shift(conv(x))\nmax |difference| = {biggest:.3g}\n({where})",
            "difference", **value_style(np.array([-biggest, biggest]) if biggest else np.array([-1.0, 1.0])))
    return diff


def _bottom_row(axes, r, words: str) -> np.ndarray:
    pm = value_style(r.pooled, r.pooled_shifted)
    _imshow(axes[0], r.pooled, "max-pool(ReLU(conv(x)))", "value", **pm)
    _imshow(axes[1], r.pooled_shifted, f"max-pool(ReLU(conv(shift(x))))\nshift: {words}", "value", **pm)
    changed = (np.abs(r.pooled - r.pooled_shifted) > 1e-9).astype(float)
    active = (np.abs(r.pooled) > 1e-9) | (np.abs(r.pooled_shifted) > 1e-9)
    cmap = binary_legend(axes[2], ("same value", "changed"))
    axes[2].imshow(np.where(active, changed, np.nan), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"pooled value at the same position\nafter {words} (blank: zero in both)", fontsize=10)
    axes[2].set_xticks([])
    axes[2].set_yticks([])
    return changed


def _fractions(ax, r) -> None:
    labels = [shift_words(*s["shift"]).replace(", ", "\n") for s in r.per_shift]
    pos = np.arange(len(labels))
    ax.bar(pos - 0.2, [s["conv_unchanged_fraction"] for s in r.per_shift], width=0.4, label="conv + ReLU map")
    ax.bar(pos + 0.2, [s["pool_unchanged_fraction"] for s in r.per_shift], width=0.4, label="after max pool")
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set_ylabel("fraction of active values\nunchanged at the same position", fontsize=9)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"small shifts: conv keeps {r.conv_unchanged_fraction:.0%} of its values in place, "
                 f"max pool {r.pool_unchanged_fraction:.0%}", fontsize=10)
    ax.legend(fontsize=8)


def equivariance_figure(result, *, save=None):
    """Draw an :class:`cnnlab.lab.explain.EquivarianceResult`.

    Returns:
        the Figure (see the module docstring for the panels).
    """
    r = result
    words = shift_words(*r.shift)
    fig = new_figure(17, 7.4)
    top, bottom = fig.subfigures(2, 1)  # two layouts: the bar chart's labels must not widen the top row
    _top_row(list(top.subplots(1, 5)), r, words)
    gs = bottom.add_gridspec(1, 5)
    _bottom_row([bottom.add_subplot(gs[0, c]) for c in range(3)], r, words)
    _fractions(bottom.add_subplot(gs[0, 3:]), r)
    fig.suptitle(f"convolution is shift-equivariant: conv(shift(x)) = shift(conv(x)) away from the border "
                 f"(largest interior difference {r.conv_max_error:.1e}); max pooling hides 1-pixel shifts only "
                 f"partly", fontsize=11)
    return finish(fig, save)
