"""The figure for ``cnnlab.lab.explain.explain_pixel``: one output value of a convolution, forward
(window, patch, kernel, products, each input channel's partial sum, bias, activation, pooling)
and backward (where a one-hot gradient at that value lands on the layer input and on the
model input).

Colour scales say where zero is: non-negative values (images, ReLU outputs) on a grey map
whose 0 is black, signed ones (weights, products, gradients) on a diverging map whose 0 is
white; every colour bar says which.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import box, finish, new_figure, show
from cnnlab.lab.viz._style import INPUT_CMAP, INPUT_NOTE, NONNEGATIVE
from cnnlab.lab.viz.digits import number_format

__all__ = ["pixel_figure", "channel_waterfall"]

#: the smallest font for numbers written on cells (points)
MIN_FONT = 9.0


def pixel_figure(explanation, *, save=None):
    """Draw a :class:`cnnlab.lab.explain.PixelExplanation`.

    Top row, forward: the layer input with the window, and for the input channel contributing
    most (largest ``|partial sum|``) its patch, filter slice and products; then every input
    channel's partial sum adding up, with the bias, to the value. Bottom row: the numbers in
    words, the backward views, and the max-pool window when pooling follows.

    Args:
        explanation: the result of ``explain_pixel``.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    e = explanation
    c = int(np.argmax(np.abs(e.channel_sums)))
    fig = new_figure(19, 8.4)
    top, bottom = fig.subfigures(2, 1, hspace=0.02)
    _forward_row(top, e, c)
    _backward_row(bottom, e, c)
    return finish(fig, save)


def _channel_note(e, c: int) -> str:
    n_in = e.layer_input.shape[0]
    return "" if n_in == 1 else f" (ch {c} of {n_in})"


def _value_style(a: np.ndarray, vmax: float | None = None) -> dict:
    """``show`` settings for values: the lab's sequential map from 0 = white when none is negative, else diverging."""
    m = float(np.max(np.abs(a))) if vmax is None else vmax
    if np.min(a) >= 0:
        return {"cmap": NONNEGATIVE, "vmin": 0.0, "vmax": m or 1.0, "colorbar": "value (0 = white)"}
    return {"diverging": True, "vmax": m or 1.0, "colorbar": "value (0 = white)"}


def _cell_font(shape) -> float:
    return max(MIN_FONT, min(12.0, 60.0 / max(shape)))


def _forward_row(sub, e, c: int) -> None:
    axes = sub.subplots(1, 5, width_ratios=[1.6, 1, 1, 1, 1.5])
    ch = _channel_note(e, c)
    (ph, pw), (i, j) = e.padding, e.at
    padded = np.pad(e.layer_input[c].astype(np.float64), ((ph, ph), (pw, pw)))
    style = _value_style(e.layer_input[c].astype(np.float64))
    if len(e.backward_steps) == 1 and np.min(e.layer_input) >= 0:  # the first layer: its input is the image
        style = {"cmap": INPUT_CMAP, "vmin": 0.0, "vmax": style["vmax"], "colorbar": f"pixel ({INPUT_NOTE})"}
    small = max(padded.shape) <= 10
    show(axes[0], padded, title=f"layer input{ch}" + (f", zero padding {ph}" if ph or pw else "")
         + f"\nwindow of output ({i}, {j})", numbers="{:.1f}" if small else False, fontsize=_cell_font(padded.shape),
         **style)
    box(axes[0], e.window_rows[0] + ph, e.window_cols[0] + pw, len(e.window_rows), len(e.window_cols), color="red",
        lw=2.5)
    if ph or pw:
        box(axes[0], ph, pw, e.layer_input.shape[1], e.layer_input.shape[2], color="tab:blue", lw=1, linestyle="--")
    show(axes[1], e.patch[c], title=f"patch{ch}", numbers="{:.2g}", **style)
    show(axes[2], e.kernel[c], title=f"filter {e.channel}{ch}", diverging=True, colorbar="weight (0 = white)",
         numbers="{:.2g}")
    show(axes[3], e.terms[c], title=f"patch x filter{ch}\nsum {e.channel_sums[c]:.4g}", diverging=True,
         colorbar="product (0 = white)", numbers="{:.2g}")
    channel_waterfall(axes[4], e)


def channel_waterfall(ax, e) -> list[float]:
    """Each input channel's partial sum, then the bias, stacked end to end up to the value.

    Returns:
        the running totals after each bar (the last one is ``e.pre_activation``).
    """
    steps = [*e.channel_sums.tolist(), e.bias]
    labels = [f"ch {k}" for k in range(len(steps) - 1)] + ["bias"]
    ends = np.cumsum(steps)
    starts = ends - np.asarray(steps)
    colors = ["tab:red" if s >= 0 else "tab:blue" for s in steps[:-1]] + ["gray"]
    ax.bar(np.arange(len(steps)), steps, bottom=starts, color=colors, width=0.8)
    ax.bar([len(steps)], [e.pre_activation], color="black", width=0.8)
    ax.axhline(0, color="black", lw=0.8)
    lo, hi = min(0.0, float(ends.min()), float(starts.min())), max(0.0, float(ends.max()), float(starts.max()))
    pad = 0.08 * ((hi - lo) or 1.0)
    ax.set_ylim(lo - pad, hi + pad)
    ticks = labels + ["= value"]
    every = max(1, len(ticks) // 12)  # 32 channels: label every 3rd, keep bias and value
    ax.set_xticks(range(len(ticks)), [t if (k % every == 0 or k >= len(ticks) - 2) else "" for k, t in
                                      enumerate(ticks)], rotation=60, fontsize=8)
    n_in, kh, kw = e.terms.shape
    ax.set_title(f"partial sum of each of the {n_in} input channel(s)\n({kh}x{kw} products each) + bias "
                 f"{e.bias:.3g} = {e.pre_activation:.4g}", fontsize=10)
    ax.set_ylabel("running total")
    ax.grid(axis="y", alpha=0.3)
    return ends.tolist()


def _summary_lines(e) -> list[str]:
    i, j = e.at
    n_in, kh, kw = e.terms.shape
    lines = [f"{e.layer_name}, filter {e.channel}, output ({i}, {j})",
             f"{e.terms.size} products = {n_in} channel(s) x {kh}x{kw}",
             f"sum of the products  {e.terms.sum():.5g}",
             f"+ bias               {e.bias:.5g}",
             f"= pre-activation     {e.pre_activation:.5g}",
             f"(model's own output: {e.model_pre_activation:.5g})"]
    if e.activation_name is not None:
        lines.append(f"{e.activation_name} -> {e.activation:.5g}")
    if e.pool is not None:
        p = e.pool
        lines.append(f"max pool cell {p['cell']}: max {p['max']:.4g}")
        lines.append("this value IS the max:\n  gradient flows back to it" if p["is_max"] else
                     "not the max: pooling drops it\n  (no gradient)")
    return lines


def _backward_row(sub, e, c: int) -> None:
    ratios = [1.1, 1.3, 1.3] + ([1] if e.pool is not None else [])  # no pooling: no empty slot
    axes = sub.subplots(1, len(ratios), width_ratios=ratios)
    axes[0].axis("off")
    axes[0].text(0.0, 0.95, "\n".join(_summary_lines(e)), va="top", ha="left", fontsize=10, family="monospace",
                 transform=axes[0].transAxes)
    ch = _channel_note(e, c)
    (i, j) = e.at
    g_layer = e.grad_layer_input[c].astype(np.float64)
    show(axes[1], g_layer, title=f"backward: d out({i}, {j}) / d layer input{ch}\n= the filter placed on the window",
         diverging=True, colorbar="gradient (0 = white)", numbers="{:.2g}" if max(g_layer.shape) <= 10 else False,
         fontsize=_cell_font(g_layer.shape))
    box(axes[1], e.window_rows[0], e.window_cols[0], len(e.window_rows), len(e.window_cols), color="black", lw=1.5,
        linestyle=":")
    g_in = e.grad_input.astype(np.float64)
    g_in = g_in[0] if g_in.shape[0] == 1 else g_in.sum(axis=0)
    nz = int(np.count_nonzero(g_in))
    earlier = len(e.backward_steps) - 1
    how = (f"through {earlier} earlier layer(s): ReLU masks, max-pool routing" if earlier else
           "the first layer: its input is the model input")
    show(axes[2], g_in, title=f"backward to the model input: {nz} pixel(s) receive gradient\n({how})",
         diverging=True, colorbar="gradient (0 = white)", numbers="{:.2g}" if max(g_in.shape) <= 10 else False,
         fontsize=_cell_font(g_in.shape))
    if e.pool is not None:
        _pool_panel(axes[3], e)


def _pool_panel(ax, e) -> None:
    p, (i, j) = e.pool, e.at
    win = np.asarray(p["window"], dtype=np.float64)
    show(ax, win, title=f"max-pool window of cell {p['cell']}\nmax {p['argmax']} in red,\nthis value dashed orange",
         numbers=number_format(win, least=2), **_value_style(win))
    r0, c0 = max(p["window_origin"][0], 0), max(p["window_origin"][1], 0)
    box(ax, p["argmax"][0] - r0, p["argmax"][1] - c0, 1, 1, color="red", lw=4)
    box(ax, i - r0, j - c0, 1, 1, color="tab:orange", lw=2, linestyle="--")
