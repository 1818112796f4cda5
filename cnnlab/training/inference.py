"""``evaluate`` and ``predict``: the model in inference mode over a dataset, in batches."""
from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from cnnlab.ops.activation import softmax
from cnnlab.training.data import check_x, check_xy
from cnnlab.training.losses import CrossEntropyLoss
from cnnlab.utils.validation import check_positive_int

__all__ = ["evaluate", "predict", "probabilities", "batched_forward"]


def batched_forward(model, x: np.ndarray, batch_size: int):
    """Yield (start, scores) for consecutive batches of ``model.forward`` in inference mode
    (no caches kept; the model's fusion plan makes this ~1.8x faster for simple_cnn)."""
    for start in range(0, x.shape[0], batch_size):
        yield start, model.forward(x[start:start + batch_size], training=False)


def probabilities(model, scores: np.ndarray) -> np.ndarray:
    """Class probabilities from a model's output: softmax of the scores, unless the model's
    last layer already outputs probabilities (``Layer.outputs_probabilities``, e.g. Softmax).

    Shape:
        scores: (N, K). output: (N, K).
    """
    if model.layers and model.layers[-1].outputs_probabilities:
        return scores
    return softmax(scores, axis=1)


def evaluate(model, x, y, batch_size: int = 256, verbose: int = 0) -> tuple[float, float]:
    """Mean loss and accuracy over ``(x, y)``, computed in batches in inference mode.

    Uses the compiled loss (cross-entropy for an uncompiled model).

    Args:
        x: float inputs of the model's dtype.
        y: integer labels.
        batch_size: images per forward pass (memory only; the result does not depend on it
            beyond float rounding).
        verbose: 1 shows a progress bar.

    Returns:
        ``(loss, accuracy)`` as Python floats.

    Shape:
        x: (N, *model.input_shape). y: (N,).
    """
    check_positive_int(batch_size, "batch_size")
    x, y, _ = check_xy(model, x, y)
    loss_fn = getattr(model, "loss_fn", None) or CrossEntropyLoss()
    total, correct = 0.0, 0
    batches = batched_forward(model, x, batch_size)
    if verbose:
        batches = tqdm(batches, total=-(-x.shape[0] // batch_size), desc="evaluate", unit="batch", leave=False)
    for start, logits in batches:
        yb = y[start:start + logits.shape[0]]
        total += loss_fn.forward(logits, yb) * len(yb)
        correct += int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
    return total / x.shape[0], correct / x.shape[0]


def predict(model, x, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
    """Class probabilities for ``x``, computed in batches in inference mode (no caches kept),
    so 60,000 images never need one giant activation.

    Applies softmax to the model's scores, unless the model already ends in Softmax.

    Returns:
        probabilities, rows summing to 1, in the model's dtype.

    Shape:
        x: (N, *model.input_shape). output: (N, K).
    """
    check_positive_int(batch_size, "batch_size")
    check_x(model, x)
    out = None
    batches = batched_forward(model, x, batch_size)
    if verbose:
        batches = tqdm(batches, total=-(-x.shape[0] // batch_size), desc="predict", unit="batch", leave=False)
    for start, scores in batches:
        if out is None:
            out = np.empty((x.shape[0], *scores.shape[1:]), dtype=scores.dtype)  # (N, K)
        out[start:start + scores.shape[0]] = probabilities(model, scores)
    return out
