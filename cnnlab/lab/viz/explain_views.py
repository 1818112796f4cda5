"""The figure for ``cnnlab.lab.explain.explain_pixel``: one output value of a convolution, forward
(window, patch, kernel, products, sum, bias, activation, pooling) and backward (where a
one-hot gradient at that value lands on the layer input and on the model input).
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import box, finish, new_figure, show

__all__ = ["pixel_figure"]


def pixel_figure(explanation, *, save=None):
    """Draw a :class:`cnnlab.lab.explain.PixelExplanation`.

    For layers with several input channels, the channel contributing most (largest
    ``|sum of its products|``) is drawn; the text sums over all channels.

    Args:
        explanation: the result of ``explain_pixel``.
        save: optional PNG/SVG path.

    Returns:
        the Figure: top row forward, bottom row backward.
    """
    e = explanation
    c = int(np.argmax(np.abs(e.terms.sum(axis=(1, 2)))))
    n_in = e.layer_input.shape[0]
    ch = "" if n_in == 1 else f" (ch {c} of {n_in})"
    (ph, pw), (i, j) = e.padding, e.at
    fig = new_figure(18, 7.6)
    gs = fig.add_gridspec(2, 5, height_ratios=[1, 1])
    # ----- forward
    ax = fig.add_subplot(gs[0, 0])
    padded = np.pad(e.layer_input[c].astype(np.float64), ((ph, ph), (pw, pw)))
    small = max(padded.shape) <= 12
    show(ax, padded, title=f"layer input{ch}" + (f", pad {ph}" if ph or pw else "") + f"\nwindow of output ({i}, {j})",
         cmap="gray", colorbar="value", numbers="{:.1f}" if small else False, fontsize=max(5.0, 40 / max(padded.shape)))
    box(ax, e.window_rows[0] + ph, e.window_cols[0] + pw, len(e.window_rows), len(e.window_cols), color="red", lw=2.5)
    if ph or pw:
        box(ax, ph, pw, e.layer_input.shape[1], e.layer_input.shape[2], color="tab:blue", lw=1, linestyle="--")
    show(fig.add_subplot(gs[0, 1]), e.patch[c], title=f"patch{ch}", cmap="gray", colorbar="value", numbers="{:.2g}")
    show(fig.add_subplot(gs[0, 2]), e.kernel[c], title=f"filter {e.channel}{ch}", diverging=True, colorbar="weight",
         numbers="{:.2g}")
    show(fig.add_subplot(gs[0, 3]), e.terms[c], title="patch x filter", diverging=True, colorbar="product",
         numbers="{:.2g}")
    ax_t = fig.add_subplot(gs[0, 4])
    ax_t.axis("off")
    lines = [f"{e.layer_name}, filter {e.channel}, output ({i}, {j})",
             f"sum of {e.terms.size} products = {e.terms.sum():.5g}",
             f"+ bias {e.bias:.5g}",
             f"= pre-activation {e.pre_activation:.5g}",
             f"(model's own output: {e.model_pre_activation:.5g})"]
    if e.activation_name is not None:
        lines.append(f"{e.activation_name} -> {e.activation:.5g}")
    if e.pool is not None:
        p = e.pool
        lines.append(f"max pool cell {p['cell']}: max {p['max']:.4g}")
        lines.append("this value IS the max:\n  gradient flows back to it" if p["is_max"] else
                     "not the max: pooling drops it\n  (no gradient)")
    ax_t.text(0.0, 0.95, "\n".join(lines), va="top", ha="left", fontsize=9, family="monospace", transform=ax_t.transAxes)
    # ----- backward
    g_layer = e.grad_layer_input[c].astype(np.float64)
    ax = fig.add_subplot(gs[1, 0:2])
    show(ax, g_layer, title=f"backward: d out({i}, {j}) / d layer input{ch}\n= the filter placed on the window",
         diverging=True, colorbar="gradient", numbers="{:.2g}" if max(g_layer.shape) <= 12 else False)
    box(ax, e.window_rows[0], e.window_cols[0], len(e.window_rows), len(e.window_cols), color="black", lw=1.5,
        linestyle=":")
    g_in = e.grad_input.astype(np.float64)
    g_in = g_in[0] if g_in.shape[0] == 1 else g_in.sum(axis=0)
    nz = int(np.count_nonzero(g_in))
    show(fig.add_subplot(gs[1, 2:4]), g_in, title=f"backward to the model input: {nz} pixel(s) receive gradient\n"
         f"(through {len(e.backward_steps) - 1} earlier layer(s): ReLU masks, max-pool routing)",
         diverging=True, colorbar="gradient", numbers="{:.2g}" if max(g_in.shape) <= 12 else False)
    ax = fig.add_subplot(gs[1, 4])
    if e.pool is not None:
        p = e.pool
        show(ax, p["window"], title=f"max-pool window of cell {p['cell']}\n(argmax {p['argmax']} circled)",
             cmap="viridis", colorbar="value", numbers="{:.2g}")
        r0, c0 = max(p["window_origin"][0], 0), max(p["window_origin"][1], 0)
        ax.scatter([p["argmax"][1] - c0], [p["argmax"][0] - r0], s=500, facecolors="none", edgecolors="red", linewidths=2.5)
        box(ax, i - r0, j - c0, 1, 1, color="white", lw=2, linestyle="--")
    else:
        ax.axis("off")
        ax.text(0.0, 0.9, "no max pooling after this layer", fontsize=10, transform=ax.transAxes, va="top")
    return finish(fig, save)
