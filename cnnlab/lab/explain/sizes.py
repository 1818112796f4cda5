"""The output-size formula with the numbers filled in, and the receptive field of each layer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.layers.describe import hw_text, output_size, shape_text


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
    shape = input_shape if input_shape is not None else getattr(model, "input_shape", None)
    shape = None if shape is None else tuple(int(d) for d in shape)
    shapes = model.layer_shapes(shape) if (shape is not None and hasattr(model, "layer_shapes")) else [None] * len(layers)
    size, jump, start = np.array([1, 1]), np.array([1, 1]), np.array([0.0, 0.0])
    rows = [ReceptiveFieldRow(-1, "input", (1, 1), (1, 1), (0, 0), (1, 1), (1, 1), (0.0, 0.0), shape)]
    current = shape
    for i, layer in enumerate(layers):
        kind = type(layer).__name__  # for the table's label only
        if not layer.keeps_spatial_layout:
            break
        window = layer.window(current)
        if window is None:  # a layer that works on each position alone
            current = shapes[i]
            continue
        kernel, stride, padding = window
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
        (r.layer, hw_text(r.kernel), hw_text(r.stride), hw_text(r.padding),
         f"{r.size[0]}x{r.size[1]}", hw_text(r.jump), f"({r.start[0]:g}, {r.start[1]:g})",
         "-" if r.output_shape is None else shape_text(r.output_shape))
        for r in rows
    ]
    widths = [max(len(row[c]) for row in table) for c in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-" * len(lines[0]))
    return rows, "\n".join(lines)
