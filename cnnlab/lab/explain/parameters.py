"""Parameter counts of dense and convolutional layers, and the tutorials' comparison of the two."""
from __future__ import annotations

from dataclasses import dataclass

from cnnlab.layers.describe import num, shape_text
from cnnlab.ops.shapes import to_pair


def dense_parameters(in_features: int, out_features: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``in * out`` weights plus ``out`` biases.

    Example:
        >>> dense_parameters(28 * 28, 100)
        78500
    """
    return in_features * out_features + (out_features if bias else 0)


def conv_parameters(in_channels: int, out_channels: int, kernel_size, bias: bool = True) -> int:
    """Parameters of a convolution: ``out * (in * KH * KW)`` weights plus ``out`` biases.

    Independent of the image size: the same filters slide over every position.

    Example:
        >>> conv_parameters(3, 64, 3)
        1792
    """
    kh, kw = to_pair(kernel_size, "kernel_size")
    return out_channels * (in_channels * kh * kw) + (out_channels if bias else 0)


@dataclass
class ParameterCase:
    """One tutorial comparison: a dense layer on a flattened image versus a convolution.

    Attributes:
        name: short description.
        input_shape: (C, H, W) of the image.
        dense_units: outputs of the dense layer.
        dense_params, dense_formula: its parameter count and the formula with numbers.
        conv: ``(in_channels, out_channels, kernel)`` of the convolution, or None.
        conv_params, conv_formula: its parameter count and formula (None without conv).
        ratio: dense_params / conv_params (None without conv).
    """

    name: str
    input_shape: tuple[int, int, int]
    dense_units: int
    dense_params: int
    dense_formula: str
    conv: tuple[int, int, int] | None = None
    conv_params: int | None = None
    conv_formula: str | None = None
    ratio: float | None = None


#: the tutorials' cases: (name, (C, H, W), dense units, conv (in, out, kernel) or None)
PARAMETER_CASES = (
    ("MNIST 28x28 -> 100 hidden units", (1, 28, 28), 100, None),
    ("MNIST 28x28 -> 128 vs 16 3x3 filters", (1, 28, 28), 128, (1, 16, 3)),
    ("ImageNet 224x224x3 -> 1,000 vs conv 3->64 3x3", (3, 224, 224), 1000, (3, 64, 3)),
    ("64x64x3 -> 512 vs 64 5x5x3 filters", (3, 64, 64), 512, (3, 64, 5)),
)


def parameter_comparison(cases=PARAMETER_CASES, *, print_fn=print) -> tuple[list[ParameterCase], str]:
    """Dense versus convolutional parameter counts for the tutorials' examples.

    Counts come from :func:`dense_parameters` / :func:`conv_parameters`, the formulas the
    ``Dense`` and ``Conv2d`` layers implement (the tests check them against real layers);
    the 150-million-parameter dense layer is never allocated.

    Args:
        cases: ``(name, (C, H, W), dense_units, (conv_in, conv_out, kernel) or None)`` tuples.
        print_fn: called with the table text; None to stay quiet.

    Returns:
        ``(rows, text)``: a :class:`ParameterCase` per case and the printed table.

    Example:
        >>> rows, _ = parameter_comparison(print_fn=None)
        >>> [(r.dense_params, r.conv_params) for r in rows]
        [(78500, None), (100480, 160), (150529000, 1792), (6291968, 4864)]
    """
    rows = []
    for name, shape, units, conv in cases:
        c, h, w = shape
        n_in = c * h * w
        dense = dense_parameters(n_in, units)
        dense_formula = f"{c}*{h}*{w}*{units} + {units} = {num(dense)}" if c > 1 else f"{h}*{w}*{units} + {units} = {num(dense)}"
        row = ParameterCase(name, tuple(shape), units, dense, dense_formula)
        if conv is not None:
            cin, cout, k = conv
            row.conv = tuple(conv)
            row.conv_params = conv_parameters(cin, cout, k)
            row.conv_formula = f"{cout}*({cin}*{k}*{k}) + {cout} = {num(row.conv_params)}"
            row.ratio = dense / row.conv_params
        rows.append(row)
    header = ("case", "dense layer", "dense params", "conv layer", "conv params", "dense / conv")
    table = [header]
    for r in rows:
        table.append((
            r.name, f"{shape_text(r.input_shape)} -> {r.dense_units}", r.dense_formula,
            "-" if r.conv is None else f"{r.conv[0]}->{r.conv[1]}, {r.conv[2]}x{r.conv[2]}",
            "-" if r.conv_formula is None else r.conv_formula,
            "-" if r.ratio is None else f"{r.ratio:,.0f}x"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "-" * len(lines[0]))
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return rows, text
