"""The output-size formula with the numbers filled in, and the receptive field of each layer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.lab.explain._helpers import _hw_text, _input_shape, _is_conv, _is_window_pool, _kind, _shape_text, _window
from cnnlab.layers.describe import output_size


# ----- receptive field -------------------------------------------------------------------------
@dataclass
class ReceptiveFieldRow:
    """How much of the input one unit of a layer's output depends on.

    Attributes:
        index: layer index in the model (-1 for the input row).
        layer: layer name and type, e.g. ``"conv2d_1 (Conv2d)"``.
        kernel, stride, padding: the layer's window settings (height, width).
        size: receptive field (height, width) in input pixels.
        jump: distance in input pixels between neighbouring output units (product of strides).
        start: input coordinate (row, col) of the centre of the first output unit's field;
            pixel centres are at 0, 1, 2, ... and negative values lie in the padding.
        output_shape: per-sample output shape of the layer, when known.
    """

    index: int
    layer: str
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    output_shape: tuple[int, ...] | None = None


def receptive_field(model, input_shape=None) -> tuple[list[ReceptiveFieldRow], str]:
    """Receptive field, jump and start of every Conv/Pool layer of a model.

    With ``r`` the field, ``j`` the jump (product of strides so far) and a layer of kernel
    ``k``, stride ``s`` and padding ``p``, per axis::

        r_out = r_in + (k - 1) * j_in
        j_out = j_in * s
        start_out = start_in + ((k - 1) / 2 - p) * j_in

    so three stacked 3x3 convolutions see 3, 5, 7 pixels, while a 2x2 pooling doubles the
    jump and every later layer adds twice as much. ReLU, BatchNorm, Dropout change nothing;
    ``GlobalAvgPool2d`` is a window as large as its input; the table stops at ``Flatten``/
    ``Dense`` (they see everything).

    Args:
        model: a ``Sequential`` (or any object with a ``layers`` list).
        input_shape: per-sample (C, H, W); default ``model.input_shape``. Needed only for
            ``GlobalAvgPool2d`` and to report output shapes.

    Returns:
        ``(rows, text)``: a :class:`ReceptiveFieldRow` for the input and for every Conv/Pool
        layer, and the table as text.

    Example:
        >>> from cnnlab.layers import Conv2d, ReLU
        >>> from cnnlab.models import Sequential
        >>> m = Sequential([Conv2d(1, 1, 3, padding=1, rng=0), ReLU()] * 1 + [Conv2d(1, 1, 3, rng=0)])
        >>> [r.size[0] for r in receptive_field(m)[0]]
        [1, 3, 5]
    """
    layers = list(getattr(model, "layers", model))
    shape = _input_shape(model, input_shape)
    shapes = model.layer_shapes(shape) if (shape is not None and hasattr(model, "layer_shapes")) else [None] * len(layers)
    size, jump, start = np.array([1, 1]), np.array([1, 1]), np.array([0.0, 0.0])
    rows = [ReceptiveFieldRow(-1, "input", (1, 1), (1, 1), (0, 0), (1, 1), (1, 1), (0.0, 0.0), shape)]
    current = shape
    for i, layer in enumerate(layers):
        kind = _kind(layer)
        if kind in ("Flatten", "Dense"):
            break
        if _is_conv(layer) or _is_window_pool(layer):
            kernel, stride, padding = _window(layer)
        elif kind == "GlobalAvgPool2d":
            if current is None:
                raise ValueError("receptive_field needs input_shape=(C, H, W) for a model with GlobalAvgPool2d "
                                 "(its window is the whole input map); received none.")
            kernel, stride, padding = (int(current[1]), int(current[2])), (1, 1), (0, 0)
        else:
            current = shapes[i]
            continue
        k, s, p = np.array(kernel), np.array(stride), np.array(padding)
        start = start + ((k - 1) / 2 - p) * jump
        size = size + (k - 1) * jump
        jump = jump * s
        current = shapes[i]
        rows.append(ReceptiveFieldRow(
            i, f"{layer.name or kind.lower()} ({kind})", tuple(kernel), tuple(stride), tuple(padding),
            (int(size[0]), int(size[1])), (int(jump[0]), int(jump[1])),
            (float(start[0]), float(start[1])), None if current is None else tuple(current)))
    header = ("layer", "kernel", "stride", "pad", "receptive field", "jump", "start", "output")
    table = [header] + [
        (r.layer, _hw_text(r.kernel), _hw_text(r.stride), _hw_text(r.padding),
         f"{r.size[0]}x{r.size[1]}", _hw_text(r.jump), f"({r.start[0]:g}, {r.start[1]:g})",
         "-" if r.output_shape is None else _shape_text(r.output_shape))
        for r in rows
    ]
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-" * len(lines[0]))
    return rows, "\n".join(lines)
