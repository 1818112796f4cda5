"""Softmax cross-entropy on logits, and accuracy.

The loss for one sample with logits ``z`` and true class ``y`` is
``-log softmax(z)[y] = logsumexp(z) - z[y]``; computed through ``log_softmax`` it stays finite
and exact for logits of any size (``exp(1e4)`` is never formed). Its gradient is
``softmax(z) - onehot(y)``, divided by N for the batch mean.

Example:
    >>> loss, dlogits = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6) == round(float(np.log(4)), 6)  # all-equal logits: ln(K)
    True
    >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
    0.5
"""
from __future__ import annotations

import numpy as np

from cnnlab.ops.activation import log_softmax


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    Args:
        logits: unnormalized class scores (not probabilities).
        labels: integer class indices in [0, K).

    Returns:
        ``(loss, dlogits)``: the batch-mean loss as a Python float and d(loss)/d(logits).

    Shape:
        logits, dlogits: (N, K). labels: (N,).
    """
    n = logits.shape[0]
    logp = log_softmax(logits, axis=1)  # (N, K)
    rows = np.arange(n)
    loss = -float(np.mean(logp[rows, labels], dtype=np.float64))
    dlogits = np.exp(logp)  # softmax, (N, K)
    dlogits[rows, labels] -= 1
    dlogits /= n
    return loss, dlogits


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose highest score is the true label (logits or probabilities alike).

    Shape:
        scores: (N, K). labels: (N,).
    """
    return float(np.mean(np.argmax(scores, axis=1) == labels))
