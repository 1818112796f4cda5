"""What a model sees: the feature maps of its Conv/Pool layers for one input (its own
activations, from ``Sequential.intermediate_outputs``), its learned first-layer filters,
its class probabilities, and filters before versus after training.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import finish, new_figure, show, symmetric_norm, write_numbers
from cnnlab.lab.viz._style import INPUT_CMAP, input_note
from cnnlab.layers import Conv2d, ReLU
from cnnlab.training.inference import probabilities

__all__ = ["feature_map_layers", "feature_maps", "first_conv_index", "filters_figure", "class_probabilities",
           "probabilities_figure", "filters_before_after"]



def one_input(model, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]  # (1, H, W): one channel
    if x.ndim == 3:
        x = x[None]  # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one input image (C, H, W) or (1, C, H, W); received shape {np.shape(x)}.")
    dtype = model.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"the input has dtype {x.dtype} but the model's parameters are {dtype}; "
                        f"pass x.astype(np.{dtype}).")
    return x


#: maps at most this many cells across get their numbers written and keep the cell size of a TINY x TINY grid
TINY = 4


def _tiny_cells(ax, shape) -> None:
    """Centre a small ``imshow`` map in its panel at the cell size of a TINY x TINY grid."""
    (h, w), pad_h, pad_w = shape, (TINY - shape[0]) / 2, (TINY - shape[1]) / 2
    ax.set_xlim(-0.5 - pad_w, w - 0.5 + pad_w)
    ax.set_ylim(h - 0.5 + pad_h, -0.5 - pad_h)


def feature_map_layers(model) -> list[int]:
    """Indices of the layers whose outputs are feature maps worth drawing: Conv2d, pooling, and
    a ReLU right after one of them (what the next layer actually receives)."""
    picked: list[int] = []
    for i, layer in enumerate(model.layers):
        after_map = bool(picked) and picked[-1] == i - 1
        if layer.produces_feature_maps or (isinstance(layer, ReLU) and after_map):
            picked.append(i)
    return picked


def feature_maps(model, x, *, layers: list[int] | None = None, max_channels: int = 8, save=None):
    """The feature maps of every Conv/Pool layer of ``model`` for one input.

    The arrays drawn are the model's own activations (``model.intermediate_outputs``): panel
    ``(layer i, channel c)`` shows ``outputs[i][0, c]``; its axes carry the label
    ``"layer{i}/channel{c}"``. Maps with negative values use a zero-centred diverging colour
    map, non-negative ones (after ReLU and pooling) a sequential one; one colour scale and
    colour bar per layer. Maps of at most 4x4 have their numbers written.

    Args:
        model: a ``Sequential``.
        x: one input (C, H, W) or (1, C, H, W), the model's dtype.
        layers: layer indices to draw (default: :func:`feature_map_layers`).
        max_channels: channels shown per layer (the first ones).
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    x = one_input(model, x)
    outputs = model.intermediate_outputs(x)
    layers = feature_map_layers(model) if layers is None else list(layers)
    if not layers:
        raise ValueError("this model has no Conv2d or pooling layer to draw feature maps of.")
    cols = max(min(max_channels, outputs[i].shape[1]) for i in layers)
    cols = max(cols, 1)
    fig = new_figure(1.6 * cols + 1.6, 1.7 * (len(layers) + 1) + 0.3)
    axes = fig.subplots(len(layers) + 1, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    n_in = x.shape[1] if x.shape[1] <= cols else 1
    lo, hi = float(x[0, :n_in].min()), float(x[0, :n_in].max())
    for c in range(n_in):
        im = show(axes[0, c], x[0, c], title=f"input ch {c}", cmap=INPUT_CMAP, colorbar=None, vmin=lo, vmax=hi)
        axes[0, c].set_label(f"input/channel{c}")
    cb = fig.colorbar(im, ax=list(axes[0, :]), fraction=0.03, pad=0.01)
    cb.set_label("pixel (white low,\nblack high)", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    for ax in axes[0, n_in:]:
        ax.set_visible(False)
    for r, i in enumerate(layers, start=1):
        out = outputs[i][0]  # (C, H, W)
        n = min(max_channels, out.shape[0])
        shown = out[:n].astype(np.float64)
        diverging = bool(shown.min() < 0)
        norm = symmetric_norm(shown) if diverging else None
        vmax = float(shown.max()) or 1.0
        im = None
        for c in range(n):
            ax = axes[r, c]
            if diverging:
                im = ax.imshow(shown[c], cmap="RdBu_r", norm=norm, interpolation="nearest")
            else:
                im = ax.imshow(shown[c], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_label(f"layer{i}/channel{c}")
            ax.set_title(f"ch {c}", fontsize=8)
            if max(shown[c].shape) <= TINY:  # a pool down to 2x2 or 1x1: its numbers, not one flat square
                write_numbers(ax, shown[c], "{:.2g}", im, fontsize=8)
                _tiny_cells(ax, shown[c].shape)
        layer = model.layers[i]
        axes[r, 0].set_ylabel(f"{i}: {type(layer).__name__}\n{'x'.join(map(str, out.shape))}", fontsize=8)
        cb = fig.colorbar(im, ax=list(axes[r, :]), fraction=0.03, pad=0.01)
        cb.set_label("activation", fontsize=7)
        cb.ax.tick_params(labelsize=6)
        for ax in axes[r, n:]:
            ax.set_visible(False)
    fig.suptitle(f"feature maps of {getattr(model, 'name', 'model')} (first {cols} channels per layer)", fontsize=11)
    return finish(fig, save)


def first_conv_index(model) -> int:
    """Index of the first Conv2d layer; ValueError when there is none."""
    for i, layer in enumerate(model.layers):
        if isinstance(layer, Conv2d):
            return i
    raise ValueError("this model has no Conv2d layer.")


def _weights(model_or_weights, layer_index) -> np.ndarray:
    if isinstance(model_or_weights, np.ndarray):
        w = model_or_weights
    else:
        i = first_conv_index(model_or_weights) if layer_index is None else layer_index
        layer = model_or_weights.layers[i]
        if type(layer).__name__ != "Conv2d":
            raise ValueError(f"layer {i} is {type(layer).__name__}, not Conv2d.")
        w = layer.weight.data
    if w.ndim != 4:
        raise ValueError(f"expected conv weights (F, C, KH, KW); received shape {w.shape}.")
    return w.astype(np.float64)


def _filter_panels(fig, axes, w: np.ndarray, norm, numbers: bool, prefix: str = "filter"):
    """Draw filter f's channel 0 (the mean over channels when C > 1) into axes[f]."""
    im = None
    for f, ax in enumerate(axes):
        img = w[f, 0] if w.shape[1] == 1 else w[f].mean(axis=0)
        im = ax.imshow(img, cmap="RdBu_r", norm=norm, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{prefix} {f}", fontsize=8)
        if numbers:
            write_numbers(ax, img, "{:.2f}", im, fontsize=7)
    return im


def filters_figure(model_or_weights, *, layer_index: int | None = None, max_filters: int = 32, save=None):
    """The learned filters of a conv layer (default: the first), on one zero-centred colour scale.

    Args:
        model_or_weights: a model, or conv weights (F, C, KH, KW).
        layer_index: which Conv2d layer (default: the first).
        max_filters: filters shown.
        save: optional PNG/SVG path.

    Returns:
        the Figure; multi-channel filters are shown as their mean over input channels.
    """
    w = _weights(model_or_weights, layer_index)[:max_filters]
    n = w.shape[0]
    cols = min(8, n)
    rows = int(np.ceil(n / cols))
    fig = new_figure(max(1.5 * cols + 1.2, 3.4), max(1.55 * rows + 0.6, 2.8))  # one filter: still legible
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False))
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    numbers = w.shape[2] * w.shape[3] <= 25 and n <= 16
    im = _filter_panels(fig, axes.ravel()[:n], w, symmetric_norm(w), numbers)
    cb = fig.colorbar(im, ax=list(axes.ravel()[:n]), fraction=0.03, pad=0.02)
    cb.set_label("weight", fontsize=8)
    kind = "" if w.shape[1] == 1 else f" (mean over {w.shape[1]} input channels)"
    fig.suptitle(f"{n} learned filter{'s' if n > 1 else ''} {w.shape[2]}x{w.shape[3]}{kind}", fontsize=11)
    return finish(fig, save)


def class_probabilities(model, x) -> np.ndarray:
    """Softmax class probabilities of ``model`` for one input (a final Softmax layer is used as is).

    Shape:
        x (C, H, W) or (1, C, H, W) -> (K,)
    """
    x = one_input(model, x)
    return probabilities(model, model.forward(x).astype(np.float64))[0]


def probabilities_figure(probs, *, class_names=None, true_label: int | None = None, image=None, save=None):
    """A bar chart of class probabilities (the predicted class in orange, the true one outlined).

    Args:
        probs: (K,) probabilities.
        class_names: K names (default 0..K-1).
        true_label: index of the true class, if known.
        image: optional 2-D image drawn beside the bars.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    probs = np.asarray(probs, dtype=np.float64).ravel()
    k = probs.size
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names for {k} probabilities.")
    pred = int(np.argmax(probs))
    fig = new_figure(8.5 if image is not None else 6, 3.6)
    if image is not None:
        ax_img, ax = fig.subplots(1, 2, width_ratios=[1, 2.2])
        pixels = np.squeeze(np.asarray(image, dtype=np.float64))
        show(ax_img, pixels, title=f"input ({input_note(pixels)})", cmap=INPUT_CMAP, colorbar="pixel")
    else:
        ax = fig.add_subplot()
    colors = ["tab:orange" if i == pred else "tab:blue" for i in range(k)]
    bars = ax.bar(range(k), probs, color=colors)
    if true_label is not None:
        bars[int(true_label)].set_edgecolor("black")
        bars[int(true_label)].set_linewidth(2.5)
    ax.set_xticks(range(k), names, rotation=0 if max(len(n) for n in names) <= 3 else 30, fontsize=9)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("probability")
    ax.set_xlabel("class")
    for i, p in enumerate(probs):
        ax.text(i, p + 0.01, f"{p:.2f}", ha="center", va="bottom", fontsize=7)
    title = f"predicted {names[pred]} ({probs[pred]:.1%})"
    if true_label is not None:
        title += f", true {names[int(true_label)]}"
    ax.set_title(title, fontsize=10)
    return finish(fig, save)


def filters_before_after(before, after, *, max_filters: int = 16, save=None):
    """Filters before and after training, and their change, on one colour scale per row.

    Args:
        before, after: conv weights (F, C, KH, KW) (e.g. ``layer.weight.data.copy()`` before
            ``fit`` and after), or models (their first Conv2d).
        max_filters: filters shown.
        save: optional PNG/SVG path.

    Returns:
        the Figure: rows "before", "after", "after - before".
    """
    wb = _weights(before, None)[:max_filters]
    wa = _weights(after, None)[:max_filters]
    if wb.shape != wa.shape:
        raise ValueError(f"before and after weights differ in shape: {wb.shape} vs {wa.shape}.")
    n = wb.shape[0]
    fig = new_figure(1.5 * n + 1.5, 5.2)
    axes = fig.subplots(3, n, squeeze=False)
    numbers = wb.shape[2] * wb.shape[3] <= 25 and n <= 8
    norm = symmetric_norm(np.concatenate([wb.ravel(), wa.ravel()]))
    for r, (w, name, nrm) in enumerate(((wb, "before", norm), (wa, "after", norm),
                                        (wa - wb, "change", symmetric_norm(wa - wb)))):
        im = _filter_panels(fig, axes[r], w, nrm, numbers, prefix=name)
        cb = fig.colorbar(im, ax=list(axes[r]), fraction=0.03, pad=0.02)
        cb.set_label("weight" if r < 2 else "after - before", fontsize=8)
    fig.suptitle("first-layer filters" + ("\n" if n < 3 else " ") + "before and after training", fontsize=11)
    return finish(fig, save)
