"""The words of ``Layer.explain``: the output-size formula with its numbers, and number formats.

Each layer class writes its own explanation (``Conv2d.explain``, ``MaxPool2d.explain``, ...);
these helpers keep the wording of shapes and numbers the same across them.

Example:
    >>> output_size(28, 2, 2)
    (14, 'out = floor((n + 2p - k) / s) + 1 = floor((28 + 2*0 - 2) / 2) + 1 = floor(26 / 2) + 1 = 13 + 1 = 14')
"""
from __future__ import annotations

from typing import NamedTuple

from cnnlab.ops.shapes import conv_output_size

__all__ = ["output_size", "shape_text", "hw_text", "num", "Shapes", "shapes_of"]


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> tuple[int, str]:
    """The output length of a convolution or pooling window, with the formula written out
    (arguments as ``cnnlab.ops.shapes.conv_output_size``).

    Returns:
        ``(size, text)``: the size from ``cnnlab.ops.shapes.conv_output_size`` and the
        formula with the numbers filled in.

    Example:
        >>> output_size(7, 3, 2)[0]
        3
    """
    size = conv_output_size(n, kernel, stride, padding)
    num_ = n + 2 * padding - kernel
    text = (f"out = floor((n + 2p - k) / s) + 1 = floor(({n} + 2*{padding} - {kernel}) / {stride}) + 1"
            f" = floor({num_} / {stride}) + 1 = {num_ // stride} + 1 = {size}")
    return size, text


def shape_text(shape) -> str:
    """``(1, 28, 28)`` -> ``"1x28x28"``."""
    return "x".join(str(int(d)) for d in shape)


def hw_text(pair) -> str:
    """``(2, 2)`` -> ``"2"``, ``(2, 3)`` -> ``"2x3"``."""
    pair = tuple(int(v) for v in pair)
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def num(value: int) -> str:
    """``421642`` -> ``"421,642"``."""
    return f"{int(value):,}"


class Shapes(NamedTuple):
    """The phrases every explanation uses for a per-sample input shape (or none)."""

    shape: tuple | None  # the input shape, or None
    out: tuple | None  # the output shape, or None
    shape_in: str  # "its input" / "the 1x28x28 input"
    arrow: str  # "" / " -> 32x28x28"
    same: str  # "" / " (shape unchanged: 32x28x28)"


def shapes_of(layer, input_shape) -> Shapes:
    """:class:`Shapes` of ``layer`` for ``input_shape`` (None: a general input)."""
    shape = None if input_shape is None else tuple(int(d) for d in input_shape)
    out = None if shape is None else tuple(layer.output_shape(shape))
    return Shapes(shape, out, "its input" if shape is None else f"the {shape_text(shape)} input",
                  "" if out is None else f" -> {shape_text(out)}",
                  "" if shape is None else f" (shape unchanged: {shape_text(shape)})")
