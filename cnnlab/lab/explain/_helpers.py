"""Small helpers shared by the ``cnnlab.lab.explain`` modules: layer kinds, windows, number formats."""
from __future__ import annotations

from cnnlab.ops.shapes import to_pair


def _kind(layer) -> str:
    return type(layer).__name__


def _is_conv(layer) -> bool:
    return _kind(layer) == "Conv2d"


def _is_window_pool(layer) -> bool:
    return _kind(layer) in ("MaxPool2d", "AvgPool2d")


def _pair(layer, name: str, default=None) -> tuple[int, int]:
    value = getattr(layer, name, None)
    if value is None:
        value = default
    if isinstance(value, str):  # "same"/"valid" kept as given by some layers
        raise ValueError(f"{_kind(layer)}.{name} is {value!r}; expected resolved integers.")
    return to_pair(value, name, minimum=0)


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, padding) pairs of a Conv2d / MaxPool2d / AvgPool2d layer."""
    kernel = _pair(layer, "kernel_size")
    stride = _pair(layer, "stride", kernel if _is_window_pool(layer) else 1)
    padding = _pair(layer, "padding", 0)
    return kernel, stride, padding


def _shape_text(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def _hw_text(pair) -> str:
    pair = tuple(int(v) for v in pair)
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _num(value: int) -> str:
    return f"{int(value):,}"


def _input_shape(model, input_shape):
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    return None if shape is None else tuple(int(d) for d in shape)
