"""Receptive-field growth over stacked layers, drawn on the input grid (numbers from
``cnnlab.lab.explain.receptive_field``).
"""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from cnnlab.lab.viz._common import finish, new_figure
from cnnlab.lab.explain import receptive_field

__all__ = ["receptive_windows", "receptive_field_figure"]


def receptive_windows(model, input_shape=None) -> list[dict]:
    """For every Conv/Pool layer, the input window seen by one central unit, nested.

    The central unit of the last Conv/Pool layer is picked first; going down, each layer's
    unit is the middle one of the units the unit above reads (its kernel window), so every
    window lies inside the next one.

    Returns:
        one dict per row of ``receptive_field`` (input row first) with ``row`` (the
        ``ReceptiveFieldRow``), ``unit`` (i, j) of that unit and ``top_left`` (row, col) and
        ``size`` (h, w) of its field in input pixels (it may reach into the padding).
    """
    rows, _ = receptive_field(model, input_shape)
    if any(r.output_shape is None for r in rows):
        raise ValueError("receptive_windows needs the model's input_shape (C, H, W); pass input_shape=.")
    units: list[tuple[int, int]] = [(0, 0)] * len(rows)
    last = rows[-1].output_shape
    units[-1] = ((last[1] - 1) // 2, (last[2] - 1) // 2) if len(last) == 3 else (0, 0)
    for k in range(len(rows) - 1, 0, -1):
        below = rows[k - 1].output_shape
        unit = []
        for ax in (0, 1):
            lo = units[k][ax] * rows[k].stride[ax] - rows[k].padding[ax]
            hi = lo + rows[k].kernel[ax] - 1
            lo, hi = max(lo, 0), min(hi, below[ax + 1] - 1)
            unit.append((lo + hi) // 2)
        units[k - 1] = tuple(unit)
    out = []
    for r, unit in zip(rows, units):
        tl = tuple(r.start[ax] + unit[ax] * r.jump[ax] - (r.size[ax] - 1) / 2 for ax in (0, 1))
        out.append({"row": r, "unit": tuple(int(u) for u in unit), "top_left": tl, "size": r.size})
    return out


def receptive_field_figure(model, input_shape=None, *, image=None, save=None):
    """Nested squares: the input pixels one central unit of each Conv/Pool layer depends on,
    and the field size per layer as a chart.

    Args:
        model: a ``Sequential`` with a known input shape (or pass ``input_shape``).
        input_shape: per-sample (C, H, W).
        image: optional 2-D image drawn under the squares.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    wins = receptive_windows(model, input_shape)
    shape = wins[0]["row"].output_shape
    if shape is None:
        raise ValueError("receptive_field_figure needs the model's input_shape (C, H, W); pass input_shape=.")
    h, w = shape[1], shape[2]
    fig = new_figure(12, 5.4)
    ax, ax2 = fig.subplots(1, 2, width_ratios=[1.15, 1])
    base = np.zeros((h, w)) if image is None else np.squeeze(np.asarray(image, dtype=np.float64))
    ax.imshow(base, cmap="gray" if image is not None else "Greys", vmin=0, vmax=max(1.0, float(base.max())),
              interpolation="nearest", extent=(-0.5, w - 0.5, h - 0.5, -0.5))
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="lightgray", lw=0.4)
    ax.tick_params(which="minor", length=0)
    cmap = colormaps["plasma"]
    n = len(wins)
    lo_r = lo_c = -0.5
    hi_r, hi_c = h - 0.5, w - 0.5
    for k, win in enumerate(wins):
        r = win["row"]
        (tr, tc), (sh, sw) = win["top_left"], win["size"]
        color = cmap(0.1 + 0.8 * k / max(n - 1, 1))
        ax.add_patch(Rectangle((tc - 0.5, tr - 0.5), sw, sh, fill=False, edgecolor=color, lw=2.2,
                               label=f"{r.layer}: {sh}x{sw}"))
        lo_r, lo_c = min(lo_r, tr - 0.5), min(lo_c, tc - 0.5)
        hi_r, hi_c = max(hi_r, tr - 0.5 + sh), max(hi_c, tc - 0.5 + sw)
    ax.set_xlim(lo_c - 0.5, hi_c + 0.5)
    ax.set_ylim(hi_r + 0.5, lo_r - 0.5)
    ax.set_title(f"receptive fields on the {h}x{w} input (one central unit per layer)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")
    labels = [win["row"].layer.split(" ")[0] for win in wins]
    sizes = [win["size"][0] for win in wins]
    jumps = [win["row"].jump[0] for win in wins]
    ax2.plot(range(n), sizes, "-o", color="tab:purple", label="receptive field (pixels)")
    ax2.step(range(n), jumps, where="post", color="tab:green", ls="--", label="jump (product of strides)")
    for k, (s, j) in enumerate(zip(sizes, jumps)):
        ax2.annotate(str(s), (k, s), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax2.set_xticks(range(n), labels, rotation=35, ha="right", fontsize=8)
    ax2.set_ylabel("input pixels (height)")
    ax2.yaxis.get_major_locator().set_params(integer=True)
    ax2.set_title("growth of the receptive field", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    return finish(fig, save)
