"""Saliency maps: which input pixels the class score is most sensitive to.

The gradient of one class score with respect to the input pixels, from cnnlab's own backward
pass: ``model.forward(x, training=False, requires_grad=True)`` then ``model.backward`` of a
one-hot upstream gradient on that class's logit (Simonyan et al., 2014).
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.viz._common import finish, new_figure, show
from cnnlab.lab.viz._style import INPUT_CMAP, input_note
from cnnlab.lab.viz.model_views import one_input

__all__ = ["input_gradient", "saliency_map", "saliency_figure"]


def input_gradient(model, x, class_index: int | None = None) -> tuple[np.ndarray, int]:
    """d(score of ``class_index``) / d(input) for one input, with cnnlab's backward.

    The score is the model's output for that class (the logit, or the probability when the
    model ends in Softmax). Parameter gradients and caches are restored afterwards, so the
    model is left exactly as it was.

    Args:
        model: a ``Sequential``.
        x: one input (C, H, W) or (1, C, H, W), the model's dtype.
        class_index: class whose score is differentiated; default the predicted class.

    Returns:
        ``(grad, class_index)`` with grad (C, H, W) in the model's dtype.
    """
    x = one_input(model, x)
    with model.preserved_state():
        scores = model.forward(x, training=False, requires_grad=True)  # (1, K)
        k = int(np.argmax(scores[0])) if class_index is None else int(class_index)
        if not 0 <= k < scores.shape[1]:
            raise ValueError(f"class_index must be in [0, {scores.shape[1] - 1}]; received {class_index}.")
        dscores = np.zeros_like(scores)
        dscores[0, k] = 1
        grad = model.backward(dscores)[0]
    return grad, k


def saliency_map(model, x, class_index: int | None = None) -> np.ndarray:
    """``max over channels of |d score / d pixel|`` (H, W), float64."""
    grad, _ = input_gradient(model, x, class_index)
    return np.abs(grad.astype(np.float64)).max(axis=0)


def saliency_figure(model, x, class_index: int | None = None, *, class_names=None, save=None):
    """The input, the signed input gradient and the saliency map (and an overlay).

    Returns:
        the Figure.
    """
    x1 = one_input(model, x)
    grad, k = input_gradient(model, x1, class_index)
    grad = grad.astype(np.float64)
    sal = np.abs(grad).max(axis=0)
    img = x1[0, 0] if x1.shape[1] == 1 else x1[0].mean(axis=0)
    name = str(class_names[k]) if class_names is not None else str(k)
    fig = new_figure(15, 3.9)
    axes = fig.subplots(1, 4)
    show(axes[0], img, title=f"input ({input_note(img)})", cmap=INPUT_CMAP, colorbar="pixel")
    show(axes[1], grad[0] if grad.shape[0] == 1 else grad.mean(axis=0), title=f"d score[{name}] / d pixel",
         diverging=True, colorbar="gradient")
    show(axes[2], sal, title="saliency |gradient|", cmap="hot", colorbar="|gradient|", vmin=0)
    axes[3].imshow(img, cmap=INPUT_CMAP, interpolation="nearest")
    im = axes[3].imshow(sal, cmap="hot", alpha=0.55, interpolation="nearest", vmin=0)
    axes[3].set_xticks([])
    axes[3].set_yticks([])
    axes[3].set_title("overlay", fontsize=10)
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.03).set_label("|gradient|", fontsize=8)
    why = ("" if sal.max() > 0 else
           " (all zero here: every path from the pixels to this score is cut by a ReLU at 0)")
    fig.suptitle(f"saliency of class {name}: the pixels whose change moves its score the most{why}", fontsize=11)
    return finish(fig, save)
