"""Shared plotting helpers: headless figures, saving by suffix, colour bars and number grids.

Figures are created with ``matplotlib.figure.Figure`` directly, never through pyplot, so
nothing here needs (or changes) a GUI backend and nothing accumulates in pyplot's figure
registry; saving renders with Agg (PNG) or the SVG/PDF backends.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab.ops import pool
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.shapes import to_pair

#: suffixes ``save=`` accepts
SAVE_SUFFIXES = (".png", ".svg", ".pdf")
DPI = 100
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"
GRAY = "gray"


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout (no clipped labels)."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def finish(fig: Figure, save=None) -> Figure:
    """Save ``fig`` to ``save`` (PNG, SVG or PDF by suffix) when given; return ``fig``.

    Raises:
        ValueError: for an unknown suffix.
        FileNotFoundError: when the folder does not exist.
    """
    if save is not None:
        path = Path(save)
        if path.suffix.lower() not in SAVE_SUFFIXES:
            raise ValueError(f"save= must end in one of {', '.join(SAVE_SUFFIXES)}; received {str(path)!r}.")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot save figure to {path}: folder {path.parent} does not exist.")
        fig.savefig(path, dpi=DPI, facecolor="white")
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure rendered as PNG bytes (for HTML reports and GIF frames)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def symmetric_norm(a, *, vmax: float | None = None) -> Normalize:
    """A colour normalization centred at zero: symmetric limits ``[-m, m]``.

    ``TwoSlopeNorm`` needs ``vmin < 0 < vmax``; symmetric limits are used instead so that
    equal magnitudes get equally strong colours on both sides.
    """
    m = float(np.max(np.abs(a))) if vmax is None else float(vmax)
    if not np.isfinite(m) or m == 0:
        m = 1.0
    return TwoSlopeNorm(vcenter=0.0, vmin=-m, vmax=m)


def show(ax, img, *, title: str | None = None, cmap: str = SEQUENTIAL, diverging: bool = False, colorbar: str | None = "",
         vmin=None, vmax=None, numbers: bool | str = False, fontsize: float | None = None, ticks: bool = False):
    """Draw a 2-D array with ``imshow``, an optional colour bar and optional cell numbers.

    Args:
        ax: the axes.
        img: 2-D array.
        title: axes title.
        cmap: colour map for non-diverging data.
        diverging: centre the colours at zero (``RdBu_r``, symmetric limits).
        colorbar: colour-bar label; None for no colour bar.
        vmin, vmax: colour limits (for diverging data only vmax is used, as +-vmax).
        numbers: write each cell's value; a format string such as ``"{:.1f}"`` or True.
        fontsize: font size of the numbers (default: from the grid size).
        ticks: keep the axis ticks (row/column indices).

    Returns:
        the ``AxesImage``.
    """
    img = np.asarray(img, dtype=np.float64)
    if diverging:
        im = ax.imshow(img, cmap=DIVERGING, norm=symmetric_norm(img, vmax=vmax), interpolation="nearest")
    else:
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if title:
        ax.set_title(title, fontsize=10)
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    if colorbar is not None:
        cb = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
        if colorbar:
            cb.set_label(colorbar, fontsize=8)
        cb.ax.tick_params(labelsize=7)
    if numbers:
        fmt = numbers if isinstance(numbers, str) else "{:.2g}"
        write_numbers(ax, img, fmt, im, fontsize=fontsize)
    return im


def write_numbers(ax, img, fmt: str = "{:.2g}", im=None, *, fontsize: float | None = None) -> None:
    """Write every cell's value on an image, black or white for contrast with its colour."""
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape
    if fontsize is None:
        fontsize = max(5.0, min(11.0, 70.0 / max(h, w)))
    for r in range(h):
        for c in range(w):
            color = "black"
            if im is not None:
                rgba = im.cmap(im.norm(img[r, c]))
                color = "white" if (0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]) < 0.5 else "black"
            text = fmt.format(img[r, c])
            if text.startswith("-") and float(text) == 0:  # "-0.00": a tiny negative rounded to zero
                text = text[1:]
            ax.text(c, r, text, ha="center", va="center", fontsize=fontsize, color=color)


def box(ax, row: float, col: float, height: float, width: float, *, color: str = "red", lw: float = 2.0, **kw) -> Rectangle:
    """Outline the cells [row, row+height) x [col, col+width) of an ``imshow`` image."""
    kw.setdefault("clip_on", False)  # a window on the border must not lose half its outline
    rect = Rectangle((col - 0.5, row - 0.5), width, height, fill=False, edgecolor=color, linewidth=lw, **kw)
    ax.add_patch(rect)
    return rect


def as_2d_image(image) -> np.ndarray:
    """Turn an image given as (H, W), (1, H, W) or (1, 1, H, W) into a float64 (H, W) array.

    uint8 images are scaled to [0, 1].
    """
    a = np.asarray(image)
    scale = 255.0 if a.dtype == np.uint8 else 1.0
    a = np.squeeze(a.astype(np.float64)) / scale
    if a.ndim != 2:
        raise ValueError(f"expected a single-channel image (H, W), (1, H, W) or (1, 1, H, W); received shape "
                         f"{np.asarray(image).shape}.")
    return a


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding ``n`` panels, at most ``max_cols`` wide."""
    cols = min(max_cols, max(1, int(np.ceil(np.sqrt(n)))))
    return int(np.ceil(n / cols)), cols


def hide_unused(axes, used: int) -> None:
    """Hide the panels after the first ``used`` of a flat list of axes."""
    for ax in list(np.ravel(axes))[used:]:
        ax.set_visible(False)


# ----- cnnlab's own ops on single images (one place that knows the op signatures) -----------------
def conv_image(image2d, kernel2d, bias: float = 0.0, stride=1, padding=0) -> np.ndarray:
    """``cnnlab.ops.conv.conv2d_forward`` on one single-channel image, in float64.

    Shape:
        image2d (H, W), kernel2d (KH, KW) -> (H_out, W_out).
    """
    x = np.asarray(image2d, dtype=np.float64)[None, None]  # (1, 1, H, W)
    w = np.asarray(kernel2d, dtype=np.float64)[None, None]  # (1, 1, KH, KW)
    out, _ = conv2d_forward(x, w, np.array([float(bias)]), stride=to_pair(stride, "stride"),
                            padding=to_pair(padding, "padding", minimum=0))
    return out[0, 0]


def pool_maps(maps, size: int = 2, kind: str = "max") -> np.ndarray:
    """``cnnlab.ops.pool`` max or average pooling (window = stride = ``size``) of (H, W) or (C, H, W)."""
    a = np.asarray(maps, dtype=np.float64)
    x = a.reshape((1, -1) + a.shape[-2:])  # (1, C, H, W)
    fwd = pool.maxpool2d_forward if kind == "max" else pool.avgpool2d_forward
    out, _ = fwd(x, (size, size), (size, size))
    return out[0].reshape(a.shape[:-2] + out.shape[-2:])  # (C, H_out, W_out) or (H_out, W_out)
