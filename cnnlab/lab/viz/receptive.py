"""Receptive-field growth over stacked layers: nested boxes on the input for one chosen unit,
and a table per layer of output size (formula filled in), field, jump and coverage (numbers
from ``cnnlab.lab.explain.receptive_field`` and ``output_size``).
"""
from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from cnnlab.lab.explain import output_size, receptive_field
from cnnlab.lab.viz._common import finish, new_figure
from cnnlab.lab.viz._style import INPUT_CMAP

__all__ = ["receptive_windows", "receptive_table", "receptive_field_figure"]


def receptive_windows(model, input_shape=None, unit=None) -> list[dict]:
    """For every Conv/Pool layer, the input pixels seen by one unit of a chain of units.

    A unit of the last Conv/Pool layer is chosen (``unit``, default the central one); going
    down, each layer's unit is the middle one of the units the unit above reads (its kernel
    window, clipped to the layer's output), so every field lies inside the next one.

    Args:
        model: a ``Sequential`` with a known input shape (or pass ``input_shape``).
        input_shape: per-sample (C, H, W).
        unit: (i, j) of the chosen unit of the last Conv/Pool layer.

    Returns:
        one dict per row of ``receptive_field`` (input row first): ``row`` (the
        ``ReceptiveFieldRow``), ``unit`` (i, j), ``top_left`` (row, col) and ``size`` (h, w)
        of the full field in input pixels (it may reach into the padding), ``box``
        ``(r0, c0, r1, c1)``: the field clipped to the image (r1, c1 exclusive), and
        ``coverage``: the share of the input's H*W pixels inside ``box``.

    Raises:
        ValueError: no input shape, or ``unit`` outside the last layer's output.
    """
    rows, _ = receptive_field(model, input_shape)
    if any(r.output_shape is None for r in rows):
        raise ValueError("receptive_windows needs the model's input_shape (C, H, W); pass input_shape=.")
    units = _unit_chain(rows, unit)
    h, w = rows[0].output_shape[1:]
    out = []
    for r, u in zip(rows, units):
        tl = tuple(int(round(r.start[ax] + u[ax] * r.jump[ax] - (r.size[ax] - 1) / 2)) for ax in (0, 1))
        box = (max(tl[0], 0), max(tl[1], 0), min(tl[0] + r.size[0], h), min(tl[1] + r.size[1], w))
        area = (box[2] - box[0]) * (box[3] - box[1])
        out.append({"row": r, "unit": u, "top_left": tl, "size": r.size, "box": box, "coverage": area / (h * w)})
    return out


def _unit_chain(rows, unit) -> list[tuple[int, int]]:
    """The chosen unit of the last row and, going down, the middle unit of each window it reads."""
    last = rows[-1].output_shape
    if unit is None:
        unit = ((last[1] - 1) // 2, (last[2] - 1) // 2)
    unit = tuple(int(v) for v in unit)
    if not (0 <= unit[0] < last[1] and 0 <= unit[1] < last[2]):
        raise ValueError(f"unit must lie in the last layer's {last[1]}x{last[2]} output; received {unit}.")
    units = [unit]
    for k in range(len(rows) - 1, 0, -1):
        below, r, up = rows[k - 1].output_shape, rows[k], units[0]
        pick = []
        for ax in (0, 1):
            lo = up[ax] * r.stride[ax] - r.padding[ax]
            lo, hi = max(lo, 0), min(lo + r.kernel[ax] - 1, below[ax + 1] - 1)
            pick.append((lo + hi) // 2)
        units.insert(0, (pick[0], pick[1]))
    return units


def receptive_table(wins: list[dict]) -> list[list[str]]:
    """Rows of text per layer: layer, kernel/stride/pad, output size with its formula, field
    (h x w = pixels), jump (input pixels between neighbouring units), coverage of the input.

    Example:
        >>> from cnnlab.layers import Conv2d
        >>> from cnnlab.models import Sequential
        >>> m = Sequential([Conv2d(1, 1, 3, rng=0)], input_shape=(1, 5, 5))
        >>> receptive_table(receptive_windows(m))[2]  # [0] is the header, [1] the input
        ['conv2d_1 (Conv2d)', '3 / 1 / 0', 'floor((5+2*0-3)/1)+1 = 3', '3x3 = 9', '1', '36.0%']
    """
    table = [["layer", "k / s / p", "output size (height)", "field (pixels)", "jump", "covers"]]
    n = wins[0]["row"].output_shape[1]
    for win in wins:
        r = win["row"]
        if r.index < 0:
            formula = f"{n}x{r.output_shape[2]}"
        else:
            (k, s, p), size = (r.kernel[0], r.stride[0], r.padding[0]), r.output_shape[1]
            formula = f"floor(({n}+2*{p}-{k})/{s})+1 = {output_size(n, k, s, p)[0]}"
            n = size
        table.append([r.layer, "-" if r.index < 0 else f"{r.kernel[0]} / {r.stride[0]} / {r.padding[0]}", formula,
                      f"{r.size[0]}x{r.size[1]} = {r.size[0] * r.size[1]}", str(r.jump[0]),
                      f"{100 * win['coverage']:.1f}%"])
    return table


def receptive_field_figure(model, input_shape=None, *, image=None, unit=None, note: str | None = None, save=None):
    """Nested boxes: the input pixels each layer's unit of one chain depends on, clipped to the
    image; beside them the per-layer table of :func:`receptive_table`.

    Args:
        model: a ``Sequential`` with a known input shape (or pass ``input_shape``).
        input_shape: per-sample (C, H, W).
        image: optional 2-D image drawn under the boxes.
        unit: (i, j) of the chosen unit of the last Conv/Pool layer (default: the central one).
        note: optional text written under the table (e.g. a tutorial's erratum).
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    wins = receptive_windows(model, input_shape, unit)
    h, w = wins[0]["row"].output_shape[1:]
    colors = [colormaps["plasma"](0.1 + 0.75 * k / max(len(wins) - 1, 1)) for k in range(len(wins))]
    fig = new_figure(14, 6.2)
    ax, ax_t = fig.subplots(1, 2, width_ratios=[1, 1.4])
    _draw_boxes(ax, wins, h, w, image, colors)
    _draw_table(ax_t, wins, colors)
    if note:
        ax_t.text(0.0, 0.3, note, transform=ax_t.transAxes, fontsize=10, va="top", color="darkred")
    i, j = wins[-1]["unit"]
    fig.suptitle(f"receptive field of unit ({i}, {j}) of {wins[-1]['row'].layer}, and of the unit below it "
                 f"in every earlier layer", fontsize=12)
    return finish(fig, save)


def _draw_boxes(ax, wins: list[dict], h: int, w: int, image, colors) -> None:
    base = np.zeros((h, w)) if image is None else np.squeeze(np.asarray(image, dtype=np.float64))
    ax.imshow(base, cmap=INPUT_CMAP, vmin=0, vmax=max(1.0, float(base.max())), interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, w, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, h, 1), minor=True)
    ax.grid(which="minor", color="dimgray", lw=0.3)
    ax.tick_params(which="minor", length=0)
    for k in range(len(wins) - 1, -1, -1):  # outermost first and thickest: a shared edge shows both colours
        r0, c0, r1, c1 = wins[k]["box"]
        ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, edgecolor=colors[k],
                               lw=1.8 + 1.0 * k))
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(f"fields on the {h}x{w} input, clipped to the image\n(box colours as in the table)", fontsize=10)
    ax.set_xlabel("input column")
    ax.set_ylabel("input row")


def _draw_table(ax, wins: list[dict], colors) -> None:
    rows = receptive_table(wins)
    ax.axis("off")
    tab = ax.table(cellText=rows[1:], colLabels=rows[0], loc="upper center", cellLoc="center")
    tab.set_in_layout(False)  # its scaled rows would otherwise squeeze the image panel
    tab.auto_set_font_size(False)
    tab.set_fontsize(10)
    tab.auto_set_column_width(list(range(len(rows[0]))))
    tab.scale(1, 2.2)
    for k, color in enumerate(colors):
        tab[k + 1, 0].set_facecolor((*color[:3], 0.45))
    ax.set_title("per layer: output size, receptive field, jump (input pixels between neighbouring\n"
                 "units) and the share of the input that one unit's field covers", fontsize=10)
