"""How training went: loss and accuracy curves, a grid of predictions, the confusion matrix and
the most confidently wrong examples.
"""
from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from cnnlab.lab.viz._common import finish, new_figure, show
from cnnlab.lab.viz._style import INPUT_CMAP

__all__ = ["history_dict", "training_curves", "prediction_grid", "confusion_matrix", "confusion_matrix_figure",
           "most_confused", "most_confused_figure"]


def history_dict(history) -> dict[str, list[float]]:
    """The metric lists of a ``History`` (its ``.history``) or of a plain dict."""
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"expected a History or a dict of metric lists; received {type(history).__name__}.")
    return {k: [float(v) for v in vals] for k, vals in h.items() if isinstance(vals, (list, tuple, np.ndarray))}


def training_curves(history, *, save=None):
    """Loss and accuracy per epoch, training and validation.

    Args:
        history: a ``History`` or a dict with ``loss``, ``accuracy`` and optionally
            ``val_loss``, ``val_accuracy`` lists (one value per epoch).
        save: optional PNG/SVG path.

    Returns:
        the Figure (two panels), epochs numbered from 1 with whole-number ticks only.
    """
    h = history_dict(history)
    if "loss" not in h:
        raise ValueError(f"history has no 'loss' entry; keys: {sorted(h)}.")
    fig = new_figure(11, 4)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            if key in h and len(h[key]):
                epochs = np.arange(1, len(h[key]) + 1)
                ax.plot(epochs, h[key], style, label="train" if key == metric else "validation", markersize=4)
        ax.set_xlabel("epoch")
        _whole_epoch_ticks(ax, max((len(v) for v in h.values()), default=1))
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per epoch", fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        if metric == "accuracy":
            ax.set_ylim(None, 1.01)
    return finish(fig, save)


def _whole_epoch_ticks(ax, n_epochs: int) -> None:
    """Ticks at whole epochs only (a 2-epoch run has no tick at 1.2), every one up to 10 epochs."""
    ax.set_xlim(0.5, max(n_epochs, 1) + 0.5)
    if n_epochs <= 10:
        ax.set_xticks(range(1, max(n_epochs, 1) + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _images(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)  # (N, H, W)
    if x.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, C, H, W); received shape {x.shape}.")
    return x


def prediction_grid(images, y_true, probs, *, class_names=None, n: int = 16, cols: int = 8, save=None):
    """The first ``n`` test images with true and predicted labels and the confidence;
    green titles for right predictions, red for wrong ones.

    Args:
        images: (N, C, H, W) or (N, H, W).
        y_true: (N,) labels.
        probs: (N, K) predicted probabilities.
        class_names: names of the K classes.
        n, cols: panels and panels per row.
        save: optional PNG/SVG path.

    Returns:
        the Figure.
    """
    imgs = _images(images)
    probs = np.asarray(probs)
    y_true = np.asarray(y_true)
    n = min(n, imgs.shape[0])
    names = [str(c) for c in (class_names if class_names is not None else range(probs.shape[1]))]
    cols = min(cols, n)
    rows = int(np.ceil(n / cols))
    fig = new_figure(1.45 * cols, 1.65 * rows + 0.4)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    pred = probs.argmax(axis=1)
    lo, hi = float(imgs[:n].min()), float(imgs[:n].max())
    im = None
    for k, ax in enumerate(axes):
        if k >= n:
            ax.set_visible(False)
            continue
        im = ax.imshow(imgs[k], cmap=INPUT_CMAP, vmin=lo, vmax=hi, interpolation="nearest")  # ink on paper
        ax.set_xticks([])
        ax.set_yticks([])
        ok = pred[k] == y_true[k]
        ax.set_title(f"true {names[y_true[k]]}\npred {names[pred[k]]} {probs[k, pred[k]]:.0%}", fontsize=8,
                     color="green" if ok else "red")
        for spine in ax.spines.values():
            spine.set_edgecolor("green" if ok else "red")
            spine.set_linewidth(2)
    cb = fig.colorbar(im, ax=list(axes[:n]), fraction=0.02, pad=0.01)
    cb.set_label("pixel", fontsize=8)
    cb.ax.tick_params(labelsize=7)
    acc = float(np.mean(pred[:n] == y_true[:n]))
    fig.suptitle(f"predictions: {int(round(acc * n))}/{n} right (green right, red wrong)", fontsize=10)
    return finish(fig, save)


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """Counts ``C[t, p]`` of samples of true class ``t`` predicted as ``p``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1])).tolist()
        [[1, 0], [1, 1]]
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; received {y_true.shape} and {y_pred.shape}.")
    k = int(num_classes if num_classes is not None else max(y_true.max(initial=0), y_pred.max(initial=0)) + 1)
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)  # (K, K)


def confusion_matrix_figure(y_true, y_pred, *, class_names=None, num_classes: int | None = None, save=None):
    """The confusion matrix as a heat map with counts in the cells (rows: true, columns: predicted).

    Returns:
        the Figure.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes if num_classes is not None
                          else (len(class_names) if class_names is not None else None))
    k = cm.shape[0]
    names = [str(c) for c in (class_names if class_names is not None else range(k))]
    fig = new_figure(1.0 + 0.55 * k + 1.5, 0.55 * k + 1.6)
    ax = fig.add_subplot()
    show(ax, cm, cmap="Blues", colorbar="samples", numbers="{:.0f}", ticks=True, fontsize=8 if k > 6 else 10)
    ax.set_xticks(range(k), names, rotation=0 if max(len(n) for n in names) <= 3 else 45, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"confusion matrix: accuracy {acc:.2%} on {cm.sum()} samples", fontsize=10)
    return finish(fig, save)


def most_confused(y_true, probs, n: int = 8) -> np.ndarray:
    """Indices of the ``n`` wrong predictions with the highest confidence in the wrong class.

    Example:
        >>> most_confused(np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]), 1).tolist()
        [2]
    """
    probs = np.asarray(probs)
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != np.asarray(y_true))
    conf = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")][:n]


def most_confused_figure(images, y_true, probs, *, class_names=None, n: int = 8, save=None):
    """The most confidently wrong predictions (see :func:`most_confused`), with their labels.

    Returns:
        the Figure (a single message panel when every prediction is right).
    """
    idx = most_confused(y_true, probs, n)
    if idx.size == 0:
        fig = new_figure(4, 1.5)
        ax = fig.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "no mistakes: every prediction is right", ha="center", va="center", transform=ax.transAxes)
        return finish(fig, save)
    fig = prediction_grid(_images(images)[idx], np.asarray(y_true)[idx], np.asarray(probs)[idx],
                          class_names=class_names, n=idx.size, cols=min(8, idx.size))
    fig.suptitle(f"the {idx.size} most confident mistakes", fontsize=10)
    return finish(fig, save)
