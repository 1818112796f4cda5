"""One colour convention for the lab's teaching figures, and the marks they share.

* Inputs (pixels) are drawn as ink on paper: 0 is white, the largest value black
  (``INPUT_CMAP``), as the tutorials draw their letters; every title that shows an input
  says so (``INPUT_NOTE``).
* Computed values pick their map from their sign (:func:`value_style`): a sequential map
  from 0 when nothing is negative, a zero-centred diverging map only when something is.
* Zero padding is hatched, so a window over the border is visibly over zeros, not off
  the image (:func:`mark_padding`).
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.patches import Patch, Rectangle

from cnnlab.lab.viz._common import DIVERGING, symmetric_norm

__all__ = ["INPUT_CMAP", "INPUT_NOTE", "NONNEGATIVE", "input_note", "input_norm", "value_style", "mark_padding",
           "binary_legend"]

INPUT_CMAP = "gray_r"
INPUT_NOTE = "white = 0, black = max"
NONNEGATIVE = "Greens"  # values >= 0: light = 0, dark = large (numbers stay readable on it)


def input_note(image) -> str:
    """What the input's grey levels mean: ``INPUT_NOTE`` unless it has negative pixels (then white is its minimum)."""
    return INPUT_NOTE if float(np.min(image)) >= 0 else "white = min, black = max"


def input_norm(*images) -> Normalize:
    """One pixel scale for one or more inputs: from min(0, smallest) to the largest value."""
    lo = min(0.0, *(float(np.min(a)) for a in images))
    hi = max(float(np.max(a)) for a in images)
    return Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)


def value_style(*arrays) -> dict:
    """``imshow`` keywords (``cmap``, ``norm``) for computed values, shared by all ``arrays``.

    Nothing negative: ``NONNEGATIVE`` from 0 to the largest value. Anything negative:
    ``RdBu_r`` with symmetric limits ``[-m, m]`` (equal magnitudes, equally strong colours).

    Example:
        >>> value_style(np.array([0.0, 2.2]), np.array([0.007]))["norm"].vmax
        2.2
    """
    lo = min(float(np.min(a)) for a in arrays)
    if lo < 0:
        return {"cmap": DIVERGING, "norm": symmetric_norm(np.concatenate([np.ravel(a) for a in arrays]))}
    hi = max(float(np.max(a)) for a in arrays)
    return {"cmap": NONNEGATIVE, "norm": Normalize(vmin=0.0, vmax=hi if hi > 0 else 1.0)}


def mark_padding(ax, shape: tuple[int, int], padding: tuple[int, int]) -> list[Rectangle]:
    """Hatch the zero-padding ring of a padded image drawn with ``imshow`` and outline the image.

    Args:
        shape: (H, W) of the image before padding.
        padding: (ph, pw).

    Returns:
        the patches drawn (empty without padding); the outline carries the label ``"image"``.
    """
    (h, w), (ph, pw) = shape, padding
    if not (ph or pw):
        return []
    hh, ww = h + 2 * ph, w + 2 * pw
    strips = [(0, 0, ph, ww), (hh - ph, 0, ph, ww), (ph, 0, h, pw), (ph, ww - pw, h, pw)]
    patches = [Rectangle((c - 0.5, r - 0.5), wd, ht, fill=False, hatch="///", edgecolor="tab:blue", lw=0,
                         label="zero padding") for r, c, ht, wd in strips if ht and wd]
    patches.append(Rectangle((pw - 0.5, ph - 0.5), w, h, fill=False, edgecolor="tab:blue", lw=1.5, linestyle="--",
                             label="image"))
    for p in patches:
        ax.add_patch(p)
    return patches


def binary_legend(ax, labels: tuple[str, str], colors: tuple[str, str] = ("#d9d9d9", "#d62728")) -> ListedColormap:
    """A two-colour map for a 0/1 panel and its legend (two swatches), instead of a colour bar.

    Returns:
        the ``ListedColormap`` to draw the panel with (``vmin=0, vmax=1``).
    """
    ax.legend(handles=[Patch(facecolor=c, edgecolor="black", label=t) for c, t in zip(colors, labels)],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=8, frameon=False)
    return ListedColormap(list(colors))
