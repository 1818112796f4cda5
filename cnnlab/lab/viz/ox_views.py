"""O versus X through the O/X tutorial's network, stage by stage and side by side.

Each stage (input, conv + bias, ReLU, max pool, flatten, class probabilities) is drawn for both
letters on ONE colour scale with one colour bar, so equal colours mean equal numbers across
the letters; every cell has its number written. Values that are never negative use a
sequential map from 0; only a stage with negative values uses the diverging one. All numbers
are the model's own activations (``Sequential.intermediate_outputs``).
"""
from __future__ import annotations

import numpy as np
from matplotlib.colors import Normalize

from cnnlab.lab.viz._common import finish, new_figure, write_numbers
from cnnlab.lab.viz._style import INPUT_CMAP, INPUT_NOTE, NONNEGATIVE, input_norm, value_style
from cnnlab.layers import Conv2d, Dense, Flatten, MaxPool2d, ReLU
from cnnlab.training.inference import probabilities

__all__ = ["ox_stages", "ox_stages_figure"]

_NAMES = {Conv2d: "conv + bias", ReLU: "ReLU", MaxPool2d: "max pool", Flatten: "flatten", Dense: "dense"}


def _as_2d(a: np.ndarray) -> np.ndarray:
    """One example's output as a 2-D grid: (1, H, W) -> (H, W); a vector (n,) -> (1, n)."""
    a = np.asarray(a, dtype=np.float64)
    return a[0] if a.ndim == 3 else a[None, :]


def ox_stages(model, images: dict, *, dense: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Every stage of a one-filter model for each named image.

    Args:
        model: a ``Sequential`` whose maps have one channel (e.g. ``zoo.ox_tutorial_cnn``).
        images: name -> 2-D image (H, W) of the model's input size.
        dense: go on past Flatten to the class probabilities (softmax of the dense output).

    Returns:
        stage title -> image name -> 2-D array: ``"input"`` (H, W), each layer's output
        (maps (H', W'), vectors (1, n)), and ``"probabilities"`` (1, K) when ``dense``.

    Raises:
        ValueError: a layer outputs more than one channel.
    """
    x = np.stack([np.asarray(v) for v in images.values()])[:, None].astype(model.dtype)  # (N, 1, H, W)
    outputs = model.intermediate_outputs(x)
    stages = {"input": {n: x[k, 0].astype(np.float64) for k, n in enumerate(images)}}
    for i, (layer, out) in enumerate(zip(model.layers, outputs)):
        if out.ndim == 4 and out.shape[1] != 1:
            raise ValueError(f"ox_stages draws one channel per stage; layer {i} ({type(layer).__name__}) "
                             f"outputs {out.shape[1]} channels.")
        if isinstance(layer, Dense) and not dense:
            break
        if isinstance(layer, Dense) and i == len(model.layers) - 1:
            stages["probabilities"] = {n: _as_2d(p) for n, p in zip(images, probabilities(model, out))}
            break
        stages[f"{i}: {_NAMES.get(type(layer), type(layer).__name__)}"] = {n: _as_2d(o) for n, o in
                                                                           zip(images, out)}
    return stages


def _stage_style(title: str, arrays: list) -> dict:
    if title == "input":
        return {"cmap": INPUT_CMAP, "norm": input_norm(*arrays)}
    if title == "probabilities":
        return {"cmap": NONNEGATIVE, "norm": Normalize(0.0, 1.0)}
    return value_style(*arrays)


def _panel(ax, a: np.ndarray, style: dict, fmt: str):
    im = ax.imshow(a, interpolation="nearest", **style)
    ax.set_xticks([])
    ax.set_yticks([])
    write_numbers(ax, np.round(a, 2) + 0.0, fmt, im, fontsize=9 if a.size > 4 else 11)  # + 0.0: no "-0"
    return im


def _filter_panel(ax, conv) -> None:
    w, b = conv.weight.data[0, 0].astype(np.float64), float(conv.bias.data[0])
    _panel(ax, w, value_style(w), "{:.3g}")
    ax.set_title(f"filter 3x3\nbias {b:.2f}", fontsize=10)


def ox_stages_figure(model, images: dict, *, dense: bool = True, class_names=("O", "X"), title: str | None = None,
                     save=None):
    """The letters side by side (one row each) through every stage, one colour scale per stage.

    Args:
        model, images, dense: as in :func:`ox_stages`.
        class_names: names of the output classes (the probabilities' column labels).
        title: the figure's title.
        save: optional PNG/SVG path.

    Returns:
        the Figure; stage ``s``'s axes carry the label ``"s/<image name>"``.
    """
    stages = ox_stages(model, images, dense=dense)
    n_rows, n_cols = len(images), len(stages) + 1  # + the filter
    widths = [a.shape[1] for a in (next(iter(v.values())) for v in stages.values())]
    widths.insert(1, 3)  # the 3x3 filter
    fig = new_figure(2.05 * n_cols + 0.6, 2.1 * n_rows + 0.8)
    # Columns as wide as their grids (at least 3 cells): a 2x2 pool is drawn smaller than a 4x4 map.
    axes = fig.subplots(n_rows, n_cols, squeeze=False, width_ratios=[max(w, 3) for w in widths])
    for c, (stage, arrays) in enumerate(stages.items()):
        col = c if c == 0 else c + 1
        style = _stage_style(stage, list(arrays.values()))
        for r, (name, a) in enumerate(arrays.items()):
            im = _panel(axes[r, col], a, style, "{:.3g}")
            axes[r, col].set_label(f"{stage}/{name}")
        shape = "x".join(map(str, a.shape)) if a.shape[0] > 1 else f"{a.size} values"
        axes[0, col].set_title(f"{stage}\n{shape}" + (f"\n({INPUT_NOTE})" if stage == "input" else ""), fontsize=10)
        cb = fig.colorbar(im, ax=list(axes[:, col]), fraction=0.05, pad=0.02, shrink=0.8)
        cb.ax.tick_params(labelsize=7)
        if stage == "probabilities":
            for ax in axes[:, col]:
                ax.set_xticks(range(len(class_names)), [f"P({n})" for n in class_names], fontsize=9)
    for r, name in enumerate(images):
        axes[r, 0].set_ylabel(f"letter {name}", fontsize=11)
    conv = next(layer for layer in model.layers if isinstance(layer, Conv2d))
    _filter_panel(axes[0, 1], conv)
    for ax in axes[1:, 1]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=12)
    return finish(fig, save)
