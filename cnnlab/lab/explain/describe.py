"""Plain-language descriptions of layers and models, with their numbers filled in.

Each layer class writes its own (``Layer.explain``); these two functions are the lab's names
for them.
"""
from __future__ import annotations

__all__ = ["explain_layer", "explain_model"]


def explain_layer(layer, input_shape=None) -> str:
    """What a layer does to the shape, and how many parameters it has, with the numbers in.

    Args:
        layer: a cnnlab layer.
        input_shape: per-sample input shape, e.g. (1, 28, 28); without it the description
            is given for a general input.

    Returns:
        one or two sentences.

    Example:
        >>> from cnnlab.layers import MaxPool2d
        >>> explain_layer(MaxPool2d(2), (32, 28, 28))
        'MaxPool2d: keeps the largest value of each 2x2 window, moving 2 at a time, separately in each of the 32 channels: 32x28x28 -> 32x14x14; 0 parameters'
    """
    return layer.explain(input_shape)


def explain_model(model, input_shape=None) -> str:
    """:func:`explain_layer` for every layer, numbered, with the shapes flowing through (``model.explain``)."""
    return model.explain(input_shape)
