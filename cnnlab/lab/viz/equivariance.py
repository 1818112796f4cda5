"""Translation equivariance (shift the input, the feature map shifts the same way) and the
local invariance max pooling adds, from ``cnnlab.lab.explain.translation_equivariance``.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.explain import shift_image
from cnnlab.lab.viz._common import finish, new_figure, show

__all__ = ["equivariance_figure"]


def equivariance_figure(result, *, save=None):
    """Draw an :class:`cnnlab.lab.explain.EquivarianceResult`.

    Top row: input, shifted input, their feature maps and the difference between
    ``conv(shift(x))`` and ``shift(conv(x))`` (zero: equivariance). Bottom row: the max-pooled
    maps, which pooled values changed, and the fraction of unchanged active values before and
    after pooling for every shift.

    Returns:
        the Figure.
    """
    r = result
    dy, dx = r.per_shift[0]["shift"]
    diff = r.fmap_shifted - shift_image(r.fmap, dy, dx)
    m = float(max(np.abs(r.fmap).max(), np.abs(r.fmap_shifted).max())) or 1.0
    fig = new_figure(17, 7.4)
    axes = fig.subplots(2, 4)
    show(axes[0, 0], r.image, title="input x", cmap="gray", colorbar="pixel")
    show(axes[0, 1], r.shifted, title=f"shift(x) by (dy={dy}, dx={dx})", cmap="gray", colorbar="pixel")
    show(axes[0, 2], r.fmap, title="conv(x)", diverging=True, vmax=m, colorbar="value")
    show(axes[0, 3], diff, title=f"conv(shift(x)) - shift(conv(x))\nmax |diff| = {np.abs(diff).max():.2g}",
         diverging=True, vmax=max(m * 1e-3, float(np.abs(diff).max())), colorbar="difference")
    pm = float(max(r.pooled.max(), r.pooled_shifted.max())) or 1.0
    show(axes[1, 0], r.pooled, title="max-pool(ReLU(conv(x)))", cmap="viridis", vmin=0, vmax=pm, colorbar="value")
    show(axes[1, 1], r.pooled_shifted, title="max-pool(ReLU(conv(shift(x))))", cmap="viridis", vmin=0, vmax=pm,
         colorbar="value")
    changed = (np.abs(r.pooled - r.pooled_shifted) > 1e-9).astype(float)
    active = (np.abs(r.pooled) > 1e-9) | (np.abs(r.pooled_shifted) > 1e-9)
    show(axes[1, 2], np.where(active, changed, np.nan), title="pooled value changed? (1 yes, 0 no;\nblank: zero in both)",
         cmap="coolwarm", vmin=0, vmax=1, colorbar="changed")
    ax = axes[1, 3]
    labels = [f"({s['shift'][0]},{s['shift'][1]})" for s in r.per_shift]
    pos = np.arange(len(labels))
    ax.bar(pos - 0.2, [s["conv_unchanged_fraction"] for s in r.per_shift], width=0.4, label="conv + ReLU map")
    ax.bar(pos + 0.2, [s["pool_unchanged_fraction"] for s in r.per_shift], width=0.4, label="after max pool")
    ax.set_xticks(pos, labels)
    ax.set_xlabel("shift (dy, dx) in pixels")
    ax.set_ylabel("fraction of active values unchanged")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"unchanged at the same position: conv {r.conv_unchanged_fraction:.0%}, pooled "
                 f"{r.pool_unchanged_fraction:.0%}\nrelative change ||after - before|| / ||before||: conv "
                 f"{r.conv_relative_change:.0%}, pooled {r.pool_relative_change:.0%}", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(f"conv is shift-equivariant (max error {r.conv_max_error:.1e}); max pooling makes 1-pixel shifts "
                 f"partly invisible", fontsize=11)
    return finish(fig, save)
