"""The building blocks one at a time: ReLU, flatten, and the whole
pipeline input -> filter -> convolution -> ReLU -> pooling -> flatten for one image.

The numbers come from cnnlab's ops (``conv2d_forward``, ``relu_forward``, the pooling ops).
"""
from __future__ import annotations

import numpy as np

from matplotlib import colormaps

from cnnlab.lab.viz._common import as_2d_image, conv_image, finish, new_figure, pool_maps, show
from cnnlab.lab.viz._style import INPUT_CMAP, NONNEGATIVE
from cnnlab.ops.activation import relu_forward

__all__ = ["relu_figure", "flatten_figure", "pipeline_numbers", "pipeline_figure"]


def _relu(a: np.ndarray) -> np.ndarray:
    return relu_forward(np.asarray(a, dtype=np.float64))[0]


def relu_figure(fmap, *, save=None):
    """ReLU before and after: the feature map, the ReLU curve with its values on it, and the result.

    Args:
        fmap: 2-D feature map (H, W) with positive and negative values.
        save: optional PNG/SVG path.

    Returns:
        the Figure; both maps share one zero-centred colour scale.
    """
    fmap = np.asarray(fmap, dtype=np.float64)
    after = _relu(fmap)
    m = float(np.max(np.abs(fmap))) or 1.0
    small = max(fmap.shape) <= 10
    fig = new_figure(13, 4.2)
    ax0, ax1, ax2 = fig.subplots(1, 3)
    n_neg = int(np.sum(fmap < 0))
    show(ax0, fmap, title=f"before ReLU ({n_neg} of {fmap.size} values < 0)", diverging=True, vmax=m,
         colorbar="value", numbers="{:.1f}" if small else False)
    t = np.linspace(-m * 1.1, m * 1.1, 201)
    ax1.plot(t, np.maximum(t, 0), color="black", lw=2, label="ReLU(x) = max(0, x)")
    ax1.scatter(fmap.ravel(), after.ravel(), c=np.where(fmap.ravel() < 0, "tab:blue", "tab:red"), s=14, zorder=3,
                label="this map's values")
    ax1.axhline(0, color="gray", lw=0.5)
    ax1.axvline(0, color="gray", lw=0.5)
    ax1.set_xlabel("input x")
    ax1.set_ylabel("output ReLU(x)")
    ax1.set_title("the ReLU curve", fontsize=10)
    ax1.legend(fontsize=8, loc="upper left")
    show(ax2, after, title="after ReLU (negatives -> 0)", diverging=True, vmax=m, colorbar="value",
         numbers="{:.1f}" if small else False)
    return finish(fig, save)


def flatten_figure(maps, *, names=None, save=None):
    """Flatten: the (C, H, W) maps and the single vector they become, as a bar chart.

    Args:
        maps: (C, H, W) or (H, W) array.
        names: optional name of each channel (what made it), for the map titles.
        save: optional PNG/SVG path.

    Returns:
        the Figure; bars are coloured by channel, in the order ``reshape`` lays them out
        (channel, then row, then column). Vectors of up to 40 numbers get every position
        ticked and every value written on its bar.
    """
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]  # (1, H, W)
    c, h, w = a.shape
    flat = a.reshape(-1)  # (C*H*W,)
    n_show = min(c, 4)
    fig = new_figure(3.0 * n_show + 7, 3.8)
    gs = fig.add_gridspec(1, n_show + 1, width_ratios=[1] * n_show + [3])
    cmap = colormaps["tab10"]
    for k in range(n_show):
        ax = fig.add_subplot(gs[0, k])
        name = f"channel {k}" + (f": {names[k]}" if names is not None else "")
        show(ax, a[k], title=f"{name} ({h}x{w})", colorbar="value" if k == n_show - 1 else None,
             vmin=float(a.min()), vmax=float(a.max()), numbers="{:.1f}" if max(h, w) <= 6 else False,
             **({"cmap": NONNEGATIVE} if a.min() >= 0 else {}))  # the lab's map for values >= 0
        for spine in ax.spines.values():
            spine.set_edgecolor(cmap(k % 10))
            spine.set_linewidth(3)
    ax = fig.add_subplot(gs[0, n_show])
    bars = ax.bar(np.arange(flat.size), flat, color=[cmap((i // (h * w)) % 10) for i in range(flat.size)], width=0.9)
    if flat.size <= 40:  # few enough to read: every position and value written
        ax.set_xticks(np.arange(flat.size))
        ax.bar_label(bars, labels=[f"{v:g}" for v in np.round(flat, 2)], fontsize=9, padding=2)
        ax.margins(y=0.15)
    for k in range(1, c):
        ax.axvline(k * h * w - 0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel(f"position in the flattened vector (0 .. {flat.size - 1})")
    ax.set_ylabel("value")
    ax.set_title(f"flatten: {c}x{h}x{w} -> vector of {flat.size}", fontsize=10)
    return finish(fig, save)


def pipeline_numbers(image, kernel, *, bias: float = 0.0, padding: int = 1, pool: int = 2) -> dict[str, np.ndarray]:
    """The arrays of the one-image pipeline, each from cnnlab's ops.

    Returns:
        dict with ``input`` (H, W), ``kernel``, ``conv``, ``relu``, ``pool`` (2-D) and
        ``flat`` (1-D), in float64.

    Example:
        >>> d = pipeline_numbers(np.eye(6), np.eye(3), padding=0)
        >>> d["conv"].shape, d["pool"].shape, d["flat"].shape
        ((4, 4), (2, 2), (4,))
    """
    img = as_2d_image(image)
    conv = conv_image(img, kernel, bias, 1, padding)
    relu = _relu(conv)
    pooled = pool_maps(relu, pool, "max")
    return {"input": img, "kernel": np.asarray(kernel, dtype=np.float64), "conv": conv, "relu": relu,
            "pool": pooled, "flat": pooled.reshape(-1)}  # flat: (H_pool*W_pool,)


def pipeline_figure(image, kernel, *, bias: float = 0.0, padding: int = 1, pool: int = 2, kernel_name: str = "filter",
                    save=None):
    """input -> filter -> convolution -> ReLU -> max pooling -> flatten, for one image and one filter.

    Args:
        image: 2-D image.
        kernel: 2-D filter.
        bias, padding: of the convolution (stride 1).
        pool: max-pool window and stride.
        kernel_name: label for the filter panel.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    d = pipeline_numbers(image, kernel, bias=bias, padding=padding, pool=pool)
    fig = new_figure(20, 4.0)
    axes = fig.subplots(1, 6, width_ratios=[1, 1, 1, 1, 1, 1.6])
    show(axes[0], d["input"], title=f"1. input {d['input'].shape[0]}x{d['input'].shape[1]}", cmap=INPUT_CMAP,
         colorbar="pixel")
    show(axes[1], d["kernel"], title=f"2. {kernel_name} {d['kernel'].shape[0]}x{d['kernel'].shape[1]}",
         diverging=True, colorbar="weight", numbers="{:.2g}")
    m = float(np.max(np.abs(d["conv"]))) or 1.0
    show(axes[2], d["conv"], title=f"3. convolution {d['conv'].shape[0]}x{d['conv'].shape[1]}", diverging=True,
         vmax=m, colorbar="value")
    # ReLU and pool are never negative: the lab's sequential map from 0 (white), not a +-m diverging bar
    show(axes[3], d["relu"], title="4. ReLU", cmap=NONNEGATIVE, vmin=0.0, vmax=m, colorbar="value")
    show(axes[4], d["pool"], title=f"5. max pool {pool}x{pool} -> {d['pool'].shape[0]}x{d['pool'].shape[1]}",
         cmap=NONNEGATIVE, vmin=0.0, vmax=m, colorbar="value")
    axes[5].bar(np.arange(d["flat"].size), d["flat"], color="tab:red", width=1.0)
    axes[5].set_title(f"6. flatten -> {d['flat'].size} numbers (to a Dense layer)", fontsize=10)
    axes[5].set_xlabel("index")
    axes[5].set_ylabel("value")
    return finish(fig, save)

