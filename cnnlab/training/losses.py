"""Loss objects: check their inputs, call ``cnnlab.ops.loss``, and keep the gradient.

Example:
    >>> loss_fn = CrossEntropyLoss()
    >>> loss = loss_fn.forward(np.zeros((2, 3)), np.array([0, 2]))
    >>> round(loss, 4)  # ln(3): uniform prediction over 3 classes
    1.0986
    >>> loss_fn.backward().shape
    (2, 3)
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_float_array, check_labels
from cnnlab.ops.loss import softmax_cross_entropy


class CrossEntropyLoss:
    """Mean softmax cross-entropy between logits and integer class labels, as
    ``torch.nn.CrossEntropyLoss()``.

    It takes LOGITS (raw scores), not probabilities: the softmax is applied inside, in a
    numerically stable way. Do not end the model in Softmax when training with this loss.

    Shape:
        logits: (N, K). labels: (N,) integers in [0, K). backward(): (N, K).
    """

    name = "cross_entropy"

    def __init__(self):
        self._dlogits: np.ndarray | None = None

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Return the batch-mean loss as a Python float and keep d(loss)/d(logits) for ``backward``.

        Raises:
            TypeError: non-float logits or non-integer labels.
            ValueError: logits not (N, K); labels not (N,) or outside [0, K).
        """
        check_float_array(logits, "CrossEntropyLoss logits")
        if logits.ndim != 2:
            hint = ""
            if logits.ndim == 1:
                hint = " For a single sample add the batch axis: logits[None]."
            elif logits.ndim > 2:
                hint = " Flatten or pool the feature maps first (e.g. Flatten() then Dense(..., num_classes))."
            raise ValueError(
                f"CrossEntropyLoss expected logits of shape (N, K) (batch, classes); received shape "
                f"{logits.shape}.{hint}"
            )
        check_labels(labels, logits.shape[0], logits.shape[1], "CrossEntropyLoss labels")
        loss, self._dlogits = softmax_cross_entropy(logits, labels)
        return loss

    __call__ = forward

    def backward(self) -> np.ndarray:
        """d(loss)/d(logits) of the last ``forward``, shaped and typed like the logits."""
        if self._dlogits is None:
            raise RuntimeError("CrossEntropyLoss.backward() called before forward(logits, labels).")
        return self._dlogits

    def get_config(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"


#: name -> loss class
LOSSES = {"cross_entropy": CrossEntropyLoss}


def get_loss(name_or_loss="cross_entropy"):
    """Return a new loss for a name (``"cross_entropy"``), or a loss object unchanged.

    Raises:
        ValueError: unknown name (the message lists the known ones).
        TypeError: neither a name nor an object with ``forward`` and ``backward``.
    """
    if isinstance(name_or_loss, str):
        key = name_or_loss.lower().replace("-", "_")
        if key in ("crossentropy", "cross_entropy_loss", "crossentropyloss"):
            key = "cross_entropy"
        if key not in LOSSES:
            raise ValueError(f"unknown loss {name_or_loss!r}; known losses: {', '.join(sorted(LOSSES))}.")
        return LOSSES[key]()
    if callable(getattr(name_or_loss, "forward", None)) and callable(getattr(name_or_loss, "backward", None)):
        return name_or_loss
    raise TypeError(
        f"loss must be a name ({', '.join(sorted(LOSSES))}) or an object with forward(logits, labels) "
        f"and backward(); received {type(name_or_loss).__name__}."
    )
