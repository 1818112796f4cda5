"""Max and average pooling on a map, and the tutorials' 4x4 max-pool example with its gradient
routing (numbers from ``cnnlab.ops.pool``).

Cells are written with as many decimals as it takes to keep distinct values distinct
(``cnnlab.lab.viz.digits``): 2.59 and 2.62 never both read 2.6.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import finish, new_figure, pool_maps, show
from cnnlab.lab.viz._style import NONNEGATIVE
from cnnlab.lab.viz.digits import number_format
from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward

__all__ = ["pooling_figure", "pool_routing", "pool_routing_figure"]


def pooling_figure(fmap, size: int = 2, *, save=None):
    """Max and average pooling of a small map, with the windows drawn and the maxima circled.

    Args:
        fmap: 2-D map (H, W), ideally small (up to ~10x10) so the numbers stay readable.
        size: window and stride.
        save: optional PNG/SVG path.

    Returns:
        the Figure: input with windows, max-pooled and average-pooled outputs (one colour scale).
    """
    fmap = np.asarray(fmap, dtype=np.float64)
    mx, av = pool_maps(fmap, size, "max"), pool_maps(fmap, size, "avg")
    small = max(fmap.shape) <= 12
    fig = new_figure(13, 4.4)
    ax0, ax1, ax2 = fig.subplots(1, 3)
    vmin, vmax = float(fmap.min()), float(fmap.max())
    style = {"cmap": NONNEGATIVE} if vmin >= 0 else {}  # a ReLU map: the lab's map for values >= 0
    fmt_in, fmt_avg = number_format(fmap), number_format(np.concatenate([fmap.ravel(), av.ravel()]))
    show(ax0, fmap, title=f"input {fmap.shape[0]}x{fmap.shape[1]}, {size}x{size} windows (max circled)",
         colorbar="value", vmin=vmin, vmax=vmax, numbers=fmt_in if small else False, **style)
    show(ax1, mx, title=f"max pooling -> {mx.shape[0]}x{mx.shape[1]}", colorbar="value", vmin=vmin, vmax=vmax,
         numbers=fmt_in if small else False, **style)
    show(ax2, av, title=f"average pooling -> {av.shape[0]}x{av.shape[1]}", colorbar="value", vmin=vmin, vmax=vmax,
         numbers=fmt_avg if small else False, **style)
    for ax, shape, step in ((ax0, fmap.shape, size), (ax1, mx.shape, 1), (ax2, av.shape, 1)):
        _window_lines(ax, shape, step)
    _circle_maxima(ax0, fmap, size, 420 if small else 30)
    return finish(fig, save)


def _window_lines(ax, shape, step: int, color: str = "white") -> None:
    for k in range(0, shape[0] + 1, step):
        ax.axhline(k - 0.5, color=color, lw=3)
    for k in range(0, shape[1] + 1, step):
        ax.axvline(k - 0.5, color=color, lw=3)


def _circle_maxima(ax, fmap: np.ndarray, size: int, s: float) -> None:
    """Circle each window's maximum (none where a window holds one value only: no single max)."""
    for pi in range(fmap.shape[0] // size):
        for pj in range(fmap.shape[1] // size):
            win = fmap[pi * size:(pi + 1) * size, pj * size:(pj + 1) * size]
            if win.max() > win.min():
                r, c = np.unravel_index(int(np.argmax(win)), win.shape)
                ax.scatter([pj * size + c], [pi * size + r], s=s, facecolors="none", edgecolors="red", linewidths=2)


def pool_routing(x, upstream, size: int = 2) -> dict[str, np.ndarray]:
    """Max pooling forward and backward on one map, from cnnlab's ops.

    Args:
        x: (H, W) input; upstream: (H_out, W_out) gradient arriving at the pooled output.
        size: window and stride.

    Returns:
        ``input``, ``output`` (H_out, W_out), ``upstream``, ``dx`` (H, W): where each
        upstream value lands (the window's first maximum), all float64.

    Example:
        >>> from cnnlab.datasets.worked_examples import pool_example, pool_upstream
        >>> r = pool_routing(pool_example(), pool_upstream())
        >>> r["output"].tolist(), r["dx"][1].tolist()
        ([[6.0, 8.0], [9.0, 11.0]], [0.0, 2.0, 0.0, 5.0])
    """
    x = np.asarray(x, dtype=np.float64)
    out, cache = maxpool2d_forward(x[None, None], size)  # (1, 1, H_out, W_out)
    up = np.asarray(upstream, dtype=np.float64)
    if up.shape != out.shape[2:]:
        raise ValueError(f"upstream must have the pooled shape {out.shape[2:]}; received {up.shape}.")
    dx = maxpool2d_backward(up[None, None], cache)[0, 0]  # (H, W)
    return {"input": x, "output": out[0, 0], "upstream": up, "dx": dx}


def pool_routing_figure(x, upstream, size: int = 2, *, printed=None, save=None):
    """The 4x4 example: input with windows, max-pool output, upstream gradient, routed gradient.

    Args:
        x: (H, W) input; upstream: (H_out, W_out) gradient at the pooled output.
        size: window and stride.
        printed: optional (H_out, W_out) output a tutorial prints, shown as an erratum when it
            differs from cnnlab's.
        save: optional PNG/SVG path.

    Returns:
        the Figure (four panels).
    """
    r = pool_routing(x, upstream, size)
    fig = new_figure(15, 4.4)
    axes = fig.subplots(1, 4)
    lo, hi = float(r["input"].min()), float(r["input"].max())  # input and output share one scale
    show(axes[0], r["input"], title=f"input {r['input'].shape[0]}x{r['input'].shape[1]}, {size}x{size} windows, "
         "max circled", cmap="Greens", vmin=lo, vmax=hi, colorbar="value", numbers="{:g}", fontsize=13)
    _window_lines(axes[0], r["input"].shape, size, color="black")
    _circle_maxima(axes[0], r["input"], size, 900)
    title = "max pool forward"
    if printed is not None and not np.array_equal(np.asarray(printed, dtype=np.float64), r["output"]):
        title += f"\n(erratum: the tutorial prints {_as_text(printed)})"
    show(axes[1], r["output"], title=title, cmap="Greens", vmin=lo, vmax=hi, colorbar="value", numbers="{:g}",
         fontsize=14)
    m = float(np.max(np.abs(r["upstream"]))) or 1.0  # one scale for both gradients; 0 is white
    show(axes[2], r["upstream"], title="upstream gradient dL/d(output)", diverging=True, vmax=m,
         colorbar="gradient (0 = white)", numbers="{:g}", fontsize=14)
    show(axes[3], r["dx"], title="backward: each gradient goes to its\nwindow's max, every other cell gets 0",
         diverging=True, vmax=m, colorbar="gradient (0 = white)", numbers="{:g}", fontsize=13)
    _window_lines(axes[3], r["dx"].shape, size, color="black")
    return finish(fig, save)


def _as_text(a) -> str:
    """``[[3, 4], [9, 11]]``: a small array as nested lists, whole numbers without ``.0``."""
    a = np.asarray(a, dtype=np.float64)
    return str(a.astype(int).tolist() if np.array_equal(a, np.round(a)) else a.tolist())
