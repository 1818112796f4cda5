"""The numbers behind the CNN tutorials' explanations, computed from cnnlab's own layers and ops.

Nothing here is typed in: output sizes come from the one formula in ``cnnlab.ops.shapes``,
parameter counts from the layers' own formulas, the convolution matrix is checked against
``cnnlab.ops.conv``, and the per-pixel story of :func:`explain_pixel` is read off a real
model's forward and backward passes.

Contents:
    * :func:`output_size`: the output-size formula with the numbers filled in.
    * :func:`receptive_field`: how far back each Conv/Pool layer "sees" (1, 3, 5, 7 for
      stacked 3x3 convolutions; pooling makes it grow faster).
    * :func:`parameter_comparison`: dense versus convolutional parameter counts.
    * :func:`conv_matrix`: a convolution as multiplication by a sparse (Toeplitz) matrix.
    * :func:`translation_equivariance`: shift the input, the feature map shifts; pooling
      makes small shifts (partly) invisible.
    * :func:`explain_layer`, :func:`explain_model`: plain-language descriptions with numbers.
    * :func:`explain_pixel`: one output value of a convolution, forward and backward.

Example:
    >>> output_size(28, 3, 1, 1)[1]
    'out = floor((n + 2p - k) / s) + 1 = floor((28 + 2*1 - 3) / 1) + 1 = floor(27 / 1) + 1 = 27 + 1 = 28'
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.ops.shapes import conv_output_size, to_pair

__all__ = [
    "output_size", "ReceptiveFieldRow", "receptive_field", "ParameterCase", "dense_parameters",
    "conv_parameters", "parameter_comparison", "conv_matrix", "conv_matrix_triplets",
    "EquivarianceResult", "shift_image", "translation_equivariance", "explain_layer", "explain_model",
    "PixelExplanation", "explain_pixel",
]


# ----- small helpers -------------------------------------------------------------------------
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


# ----- output size -----------------------------------------------------------------------------
def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> tuple[int, str]:
    """The output length of a convolution or pooling window, with the formula written out.

    Args:
        n: input length (height or width).
        kernel: window length.
        stride: step between windows.
        padding: zeros added on each side.

    Returns:
        ``(size, text)``: the size from ``cnnlab.ops.shapes.conv_output_size`` and the
        formula with the numbers filled in.

    Example:
        >>> output_size(28, 2, 2)
        (14, 'out = floor((n + 2p - k) / s) + 1 = floor((28 + 2*0 - 2) / 2) + 1 = floor(26 / 2) + 1 = 13 + 1 = 14')
        >>> output_size(7, 3, 2)[0]
        3
    """
    size = conv_output_size(n, kernel, stride, padding)
    num = n + 2 * padding - kernel
    text = (f"out = floor((n + 2p - k) / s) + 1 = floor(({n} + 2*{padding} - {kernel}) / {stride}) + 1"
            f" = floor({num} / {stride}) + 1 = {num // stride} + 1 = {size}")
    return size, text


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


# ----- parameter counts ------------------------------------------------------------------------
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
        dense_formula = f"{c}*{h}*{w}*{units} + {units} = {_num(dense)}" if c > 1 else f"{h}*{w}*{units} + {units} = {_num(dense)}"
        row = ParameterCase(name, tuple(shape), units, dense, dense_formula)
        if conv is not None:
            cin, cout, k = conv
            row.conv = tuple(conv)
            row.conv_params = conv_parameters(cin, cout, k)
            row.conv_formula = f"{cout}*({cin}*{k}*{k}) + {cout} = {_num(row.conv_params)}"
            row.ratio = dense / row.conv_params
        rows.append(row)
    header = ("case", "dense layer", "dense params", "conv layer", "conv params", "dense / conv")
    table = [header]
    for r in rows:
        table.append((
            r.name, f"{_shape_text(r.input_shape)} -> {r.dense_units}", r.dense_formula,
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


# ----- convolution as a matrix -------------------------------------------------------------------
def _conv_matrix_index(kh: int, kw: int, input_shape, stride, padding) -> np.ndarray:
    h, w = (int(d) for d in input_shape)
    sh, sw = to_pair(stride, "stride")
    ph, pw = to_pair(padding, "padding", minimum=0)
    h_out = conv_output_size(h, kh, sh, ph)
    w_out = conv_output_size(w, kw, sw, pw)
    index = np.full((h_out * w_out, h * w), -1, dtype=np.int64)  # (H_out*W_out, H*W)
    # Row r = (oi, oj) is the window at (oi*sh - ph, oj*sw - pw); entry (u, v) of the kernel
    # multiplies input pixel (oi*sh - ph + u, oj*sw - pw + v), unless that pixel is padding.
    oi, oj, u, v = np.meshgrid(np.arange(h_out), np.arange(w_out), np.arange(kh), np.arange(kw), indexing="ij")
    r, c = oi * sh - ph + u, oj * sw - pw + v
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    rows = (oi * w_out + oj)[inside]
    cols = (r * w + c)[inside]
    index[rows, cols] = (u * kw + v)[inside]
    return index


def conv_matrix(kernel, input_shape, stride=1, padding=0, *, return_index: bool = False):
    """The sparse (doubly block Toeplitz) matrix of a single-channel convolution.

    Row ``r`` of ``M`` holds the kernel's weights at the columns of the input pixels the
    ``r``-th window covers, zeros elsewhere, so that::

        M @ x.ravel() == conv(x).ravel()        (forward)
        M.T @ dout.ravel() == dx.ravel()        (backward: the transpose spreads gradients)

    Every row reuses the same ``KH*KW`` numbers (weight sharing) and most entries are zero
    (sparsity). cnnlab's convolution, like PyTorch's, is a cross-correlation (no kernel flip).

    Args:
        kernel: 2-D filter.
        input_shape: (H, W) of the input image.
        stride: int or pair.
        padding: int or pair (zeros on each side).
        return_index: also return the matrix of kernel-entry indices (``u*KW + v``; -1 for
            structural zeros), which shows the weight sharing.

    Returns:
        ``M`` (dense NumPy array of the kernel's dtype), or ``(M, index)``.

    Shape:
        kernel: (KH, KW). M, index: (H_out*W_out, H*W).

    Example:
        >>> M = conv_matrix(np.array([[1.0, 2.0], [3.0, 4.0]]), (3, 3))
        >>> M.shape
        (4, 9)
        >>> M[0].tolist()
        [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]
    """
    kernel = np.asarray(kernel)
    if kernel.ndim != 2:
        raise ValueError(f"conv_matrix expected a 2-D kernel (KH, KW); received shape {kernel.shape}.")
    if len(tuple(input_shape)) != 2:
        raise ValueError(f"conv_matrix expected input_shape (H, W); received {tuple(input_shape)}.")
    dtype = kernel.dtype if np.issubdtype(kernel.dtype, np.floating) else np.dtype(np.float64)
    index = _conv_matrix_index(kernel.shape[0], kernel.shape[1], input_shape, stride, padding)
    M = np.zeros(index.shape, dtype=dtype)  # (H_out*W_out, H*W)
    used = index >= 0
    M[used] = kernel.reshape(-1)[index[used]]  # (KH*KW,) weights gathered into the slots
    return (M, index) if return_index else M


def conv_matrix_triplets(kernel, input_shape, stride=1, padding=0):
    """The convolution matrix in coordinate form, without forming the dense matrix's zeros.

    Returns:
        ``(rows, cols, vals, shape)`` with ``M[rows[t], cols[t]] = vals[t]``; every kernel
        weight appears once per window that covers a real (non-padding) pixel.

    Example:
        >>> rows, cols, vals, shape = conv_matrix_triplets(np.ones((3, 3)), (5, 5))
        >>> shape, len(vals)
        ((9, 25), 81)
    """
    kernel = np.asarray(kernel)
    if not np.issubdtype(kernel.dtype, np.floating):
        kernel = kernel.astype(np.float64)
    index = _conv_matrix_index(kernel.shape[0], kernel.shape[1], input_shape, stride, padding)
    rows, cols = np.nonzero(index >= 0)
    return rows, cols, kernel.reshape(-1)[index[rows, cols]], index.shape  # vals: (nnz,)


# ----- translation equivariance ------------------------------------------------------------------
def shift_image(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move the last two axes by (dy, dx) pixels, filling the uncovered border with zeros.

    Example:
        >>> shift_image(np.arange(4.0).reshape(2, 2), 0, 1).tolist()
        [[0.0, 0.0], [0.0, 2.0]]
    """
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    src_r = slice(max(0, -dy), h - max(0, dy))
    dst_r = slice(max(0, dy), h - max(0, -dy))
    src_c = slice(max(0, -dx), w - max(0, dx))
    dst_c = slice(max(0, dx), w - max(0, -dx))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


@dataclass
class EquivarianceResult:
    """Numbers (and the arrays for the figure) of :func:`translation_equivariance`.

    Attributes:
        conv_max_error: largest ``|conv(shift(x)) - shift(conv(x))|`` over all shifts,
            away from the border the shift wipes out (0 up to rounding: equivariance).
        conv_unchanged_fraction: fraction of active conv outputs (nonzero in either map)
            whose value at the same position is unchanged by the shift (small).
        pool_unchanged_fraction: the same fraction after ReLU and max pooling (larger: the
            local invariance pooling adds).
        conv_relative_change, pool_relative_change: ``||after - before|| / ||before||`` at the
            same positions, for the ReLU map and the pooled map (pooling makes it smaller).
        per_shift: one dict of these numbers per (dy, dx).
        image, shifted, fmap, fmap_shifted, pooled, pooled_shifted: the arrays of the first
            shift, for pictures (2-D).
    """

    conv_max_error: float
    conv_unchanged_fraction: float
    pool_unchanged_fraction: float
    conv_relative_change: float = 0.0
    pool_relative_change: float = 0.0
    per_shift: list = field(default_factory=list)
    image: np.ndarray | None = None
    shifted: np.ndarray | None = None
    fmap: np.ndarray | None = None
    fmap_shifted: np.ndarray | None = None
    pooled: np.ndarray | None = None
    pooled_shifted: np.ndarray | None = None


def _relative_change(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(a))
    return float(np.linalg.norm(b - a) / scale) if scale > 0 else 0.0


def translation_equivariance(image, kernel, *, shifts=((0, 1), (1, 0), (0, -1), (-1, 0)), pool_size: int = 2,
                             padding: int | None = None, tol: float = 1e-9) -> EquivarianceResult:
    """Measure that convolution commutes with shifts, and how much max pooling hides them.

    For each shift the image is moved by (dy, dx) with zero fill (:func:`shift_image`) and
    passed through cnnlab's ``conv2d_forward`` (padding keeps the size), ReLU and
    ``maxpool2d_forward``.

    Args:
        image: 2-D float image (H, W); a border of zeros at least ``max shift`` wide makes the
            zero-filled shift lossless.
        kernel: 2-D filter (KH, KW), odd sizes.
        shifts: (dy, dx) pixel shifts to try.
        pool_size: max-pool window and stride.
        padding: conv padding; default ``KH // 2`` ("same").
        tol: two values within ``tol`` count as unchanged.

    Returns:
        an :class:`EquivarianceResult`.
    """
    from cnnlab.ops.activation import relu_forward
    from cnnlab.ops.conv import conv2d_forward
    from cnnlab.ops.pool import maxpool2d_forward

    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"translation_equivariance expected a 2-D image and a 2-D kernel; received shapes "
                         f"{image.shape} and {kernel.shape}.")
    pad = kernel.shape[0] // 2 if padding is None else padding
    w = kernel[None, None]  # (1, 1, KH, KW)
    b = np.zeros(1)

    def features(x2d):
        fmap, _ = conv2d_forward(x2d[None, None], w, b, stride=(1, 1), padding=(pad, pad))  # (1, 1, H, W)
        act, _ = relu_forward(fmap)
        pooled, _ = maxpool2d_forward(act, (pool_size, pool_size), (pool_size, pool_size))
        return fmap[0, 0], act[0, 0], pooled[0, 0]

    fmap, act, pooled = features(image)
    per_shift, first = [], None
    for dy, dx in shifts:
        shifted = shift_image(image, dy, dx)
        fmap_s, act_s, pooled_s = features(shifted)
        # Compare away from the strip the zero fill and the padding disturb.
        m = max(abs(dy), abs(dx)) + kernel.shape[0]
        expected = shift_image(fmap, dy, dx)
        err = float(np.max(np.abs(fmap_s - expected)[m:-m, m:-m]))
        active = (np.abs(act) > tol) | (np.abs(act_s) > tol)
        conv_same = float(np.mean(np.abs(act - act_s)[active] <= tol)) if active.any() else 1.0
        pactive = (np.abs(pooled) > tol) | (np.abs(pooled_s) > tol)
        pool_same = float(np.mean(np.abs(pooled - pooled_s)[pactive] <= tol)) if pactive.any() else 1.0
        per_shift.append({"shift": (int(dy), int(dx)), "conv_max_error": err,
                          "conv_unchanged_fraction": conv_same, "pool_unchanged_fraction": pool_same,
                          "conv_relative_change": _relative_change(act, act_s),
                          "pool_relative_change": _relative_change(pooled, pooled_s)})
        if first is None:
            first = (shifted, fmap_s, pooled_s)
    return EquivarianceResult(
        conv_max_error=max(p["conv_max_error"] for p in per_shift),
        conv_unchanged_fraction=float(np.mean([p["conv_unchanged_fraction"] for p in per_shift])),
        pool_unchanged_fraction=float(np.mean([p["pool_unchanged_fraction"] for p in per_shift])),
        conv_relative_change=float(np.mean([p["conv_relative_change"] for p in per_shift])),
        pool_relative_change=float(np.mean([p["pool_relative_change"] for p in per_shift])),
        per_shift=per_shift, image=image, shifted=first[0], fmap=fmap, fmap_shifted=first[1],
        pooled=pooled, pooled_shifted=first[2])


# ----- plain-language descriptions -----------------------------------------------------------------
def explain_layer(layer, input_shape=None) -> str:
    """What a layer does to the shape, and how many parameters it has, with the numbers in.

    Args:
        layer: a cnnlab layer.
        input_shape: per-sample input shape, e.g. (1, 28, 28); without it the description
            is given for a general input.

    Returns:
        one or two sentences.

    Example:
        >>> from cnnlab.layers import Conv2d
        >>> print(explain_layer(Conv2d(1, 32, 3, padding=1, rng=0), (1, 28, 28)).splitlines()[0])
        Conv2d: slides 32 filters of size 1x3x3 over the 1x28x28 input with stride 1 and padding 1 -> 32x28x28; 32*(1*3*3)+32 = 320 parameters
    """
    kind = _kind(layer)
    shape = None if input_shape is None else tuple(int(d) for d in input_shape)
    out = None if shape is None else tuple(layer.output_shape(shape))
    n_params = layer.num_parameters()
    shape_in = "its input" if shape is None else f"the {_shape_text(shape)} input"
    arrow = "" if out is None else f" -> {_shape_text(out)}"
    same = "" if shape is None else f" (shape unchanged: {_shape_text(shape)})"

    if kind == "Conv2d":
        (kh, kw), stride, padding = _window(layer)
        f, c = layer.out_channels, layer.in_channels
        has_bias = getattr(layer, "bias", None) is not None
        count = f"{f}*({c}*{kh}*{kw})" + (f"+{f}" if has_bias else "")
        text = (f"Conv2d: slides {f} filters of size {c}x{kh}x{kw} over {shape_in} with stride {_hw_text(stride)} "
                f"and padding {_hw_text(padding)}{arrow}; {count} = {_num(n_params)} parameters"
                + ("" if has_bias else " (no bias)"))
        detail = f"\n  each output value = sum of {c * kh * kw} products (a {c}x{kh}x{kw} window times one filter)" + (
            " + the filter's bias" if has_bias else "")
        if shape is not None:
            detail += f"; {output_size(shape[1], kh, stride[0], padding[0])[1].replace('out', 'H_out', 1)}"
        return text + detail
    if _is_window_pool(layer):
        (kh, kw), stride, padding = _window(layer)
        what = "keeps the largest value of" if kind == "MaxPool2d" else "averages"
        channels = "each channel" if shape is None else f"each of the {shape[0]} channels"
        pad = "" if padding == (0, 0) else f" and padding {_hw_text(padding)}"
        return (f"{kind}: {what} each {kh}x{kw} window, moving {_hw_text(stride)} at a time{pad}, separately in "
                f"{channels}{'' if shape is None else ': ' + _shape_text(shape)}{arrow}; 0 parameters")
    if kind == "GlobalAvgPool2d":
        if shape is None:
            return "GlobalAvgPool2d: averages each channel over its whole map, one number per channel; 0 parameters"
        return (f"GlobalAvgPool2d: averages each of the {shape[0]} channels over its whole {shape[1]}x{shape[2]} map: "
                f"{_shape_text(shape)}{arrow}; 0 parameters")
    if kind == "ReLU":
        return f"ReLU: replaces every negative value by 0 and keeps positive ones{same}; 0 parameters"
    if kind == "LeakyReLU":
        return (f"LeakyReLU: keeps positive values and multiplies negative ones by {layer.negative_slope:g}{same}; "
                f"0 parameters")
    if kind == "Sigmoid":
        return f"Sigmoid: squashes every value into (0, 1) with 1 / (1 + exp(-x)){same}; 0 parameters"
    if kind == "Tanh":
        return f"Tanh: squashes every value into (-1, 1) with tanh(x){same}; 0 parameters"
    if kind == "Softmax":
        return f"Softmax: turns each sample's scores into probabilities that sum to 1{same}; 0 parameters"
    if kind == "Flatten":
        if shape is None:
            return "Flatten: lays each sample's values out as one vector; 0 parameters"
        expr = "*".join(str(d) for d in shape)
        return f"Flatten: lays the {_shape_text(shape)} values out as one vector of {expr} = {_num(out[0])} numbers; 0 parameters"
    if kind == "Dense":
        nin, nout = layer.in_features, layer.out_features
        has_bias = getattr(layer, "bias", None) is not None
        count = f"{nin}*{nout} weights" + (f" + {nout} biases" if has_bias else "")
        return (f"Dense: connects all {_num(nin)} inputs to each of {_num(nout)} outputs{arrow}; "
                f"{count} = {_num(n_params)} parameters")
    if kind == "Dropout":
        p = layer.p
        scale = f"1/(1-{p:g}) = {1 / (1 - p):.4g}"
        return (f"Dropout: while training, zeroes each value with probability {p:g} and scales the survivors by "
                f"{scale}; at inference it does nothing{same}; 0 parameters")
    if kind in ("BatchNorm2d", "BatchNorm1d"):
        c = layer.num_features
        unit = "channel" if kind == "BatchNorm2d" else "feature"
        n_buf = sum(v.size for v in layer.buffers().values())
        return (f"{kind}: normalizes each of the {c} {unit}s to zero mean and unit variance (batch statistics while "
                f"training, running averages at inference), then scales by gamma and shifts by beta{same}; "
                f"2*{c} = {_num(n_params)} parameters (plus {_num(n_buf)} running-statistic values)")
    return f"{kind}: {shape_in}{arrow}; {_num(n_params)} parameters"


def explain_model(model, input_shape=None) -> str:
    """:func:`explain_layer` for every layer, numbered, with the shapes flowing through.

    Example:
        >>> from cnnlab.zoo import ox_cnn
        >>> print(explain_model(ox_cnn()).splitlines()[-1])
        Total: 26 parameters
    """
    shape = _input_shape(model, input_shape)
    lines = [f"Model '{getattr(model, 'name', 'model')}'" + ("" if shape is None else f" on input {_shape_text(shape)}") + ":"]
    for i, layer in enumerate(model.layers):
        text = explain_layer(layer, shape).replace("\n", "\n     ")
        lines.append(f"{i:3d}. {text}")
        if shape is not None:
            shape = tuple(layer.output_shape(shape))
    lines.append(f"Total: {_num(model.num_parameters())} parameters")
    return "\n".join(lines)


# ----- one pixel, forward and backward -----------------------------------------------------------------
@dataclass
class PixelExplanation:
    """Everything behind one output value of a convolution layer, with real numbers.

    Attributes:
        layer_index, layer_name: the Conv2d layer explained.
        at, channel: output position (i, j) and output channel (filter).
        stride, padding: the layer's settings.
        window_rows, window_cols: input rows/columns the window covers (may include padding:
            negative or >= H).
        layer_input: the conv layer's input for this sample (C_in, H, W).
        patch: the window's values, zeros where it lies in the padding (C_in, KH, KW).
        kernel: the filter (C_in, KH, KW).
        terms: ``patch * kernel`` elementwise (C_in, KH, KW), in float64.
        bias: the filter's bias (0 without bias).
        pre_activation: ``terms.sum() + bias`` (float64).
        model_pre_activation: the model's own conv output at this position.
        activation_name, activation: the following activation layer and its output there
            (None when the conv is not followed by one).
        pool: for a following MaxPool2d: the pooled cell, its window values, the position
            cnnlab's maxpool backward routes that cell's gradient to (``argmax``, ``routed``)
            and whether it is this one (``is_max``), else None.
        grad_layer_input: d(out[channel, i, j]) / d(conv input), from the layer's backward
            with a one-hot upstream gradient: the filter placed on the window (C_in, H, W).
        grad_input: the same derivative with respect to the model input, through every
            earlier layer's backward (ReLU masks and max-pool routing) (C, H, W).
        backward_steps: ``(layer name, gradient with respect to that layer's input)`` from
            the explained layer back to the model input.
    """

    layer_index: int
    layer_name: str
    at: tuple[int, int]
    channel: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    window_rows: np.ndarray
    window_cols: np.ndarray
    layer_input: np.ndarray
    patch: np.ndarray
    kernel: np.ndarray
    terms: np.ndarray
    bias: float
    pre_activation: float
    model_pre_activation: float
    activation_name: str | None
    activation: float | None
    pool: dict | None
    grad_layer_input: np.ndarray
    grad_input: np.ndarray
    backward_steps: list

    @property
    def multiply_add(self) -> str:
        """The multiply-add written out: ``x*w + x*w + ... + bias = pre-activation``."""
        parts = [f"{p:.3g}*{k:.3g}" for p, k in zip(self.patch.ravel(), self.kernel.ravel())]
        if len(parts) > 27:
            parts = parts[:12] + [f"... ({len(parts) - 24} more)"] + parts[-12:]
        return " + ".join(parts) + f" + bias {self.bias:.4g} = {self.pre_activation:.6g}"

    def __str__(self) -> str:
        i, j = self.at
        lines = [
            f"{self.layer_name}: output channel {self.channel} at (row {i}, col {j})",
            f"  window on the layer input: rows {self.window_rows[0]}..{self.window_rows[-1]}, "
            f"cols {self.window_cols[0]}..{self.window_cols[-1]} (stride {_hw_text(self.stride)}, "
            f"padding {_hw_text(self.padding)}; out-of-range rows/cols are zero padding)",
            f"  {self.multiply_add}",
            f"  model's own output there: {self.model_pre_activation:.6g}",
        ]
        if self.activation_name is not None:
            lines.append(f"  after {self.activation_name}: {self.activation:.6g}")
        if self.pool is not None:
            p = self.pool
            lines.append(f"  max pool cell {p['cell']}: window max {p['max']:.6g}; backward routes its gradient to "
                         f"{p['argmax']}: " + ("this position" if p["is_max"] else "not this position (no gradient)"))
        nz = np.count_nonzero(self.grad_input)
        lines.append(f"  backward: a one-hot gradient here reaches {nz} input pixel(s); on the layer input it is the "
                     f"filter placed on the window")
        return "\n".join(lines)


_ACTIVATIONS = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh")


def _pool_routing(src: np.ndarray, layer, at: tuple[int, int]) -> dict | None:
    """Which max-pool cell position ``at`` of ``src`` (1, 1, H, W) feeds, and whether cnnlab's
    maxpool backward routes that cell's gradient to it (None if the pooling skips ``at``)."""
    from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward

    (kh, kw), (sh, sw), (ph, pw) = _window(layer)
    i, j = at
    pi, pj = (i + ph) // sh, (j + pw) // sw
    pooled, cache = maxpool2d_forward(src, (kh, kw), (sh, sw), (ph, pw))
    r0, c0 = pi * sh - ph, pj * sw - pw
    if pi >= pooled.shape[2] or pj >= pooled.shape[3] or not (r0 <= i < r0 + kh and c0 <= j < c0 + kw):
        return None
    dout = np.zeros_like(pooled)
    dout[0, 0, pi, pj] = 1
    routed = maxpool2d_backward(dout, cache)[0, 0]  # (H, W): the one-hot lands on the window's max
    arg = tuple(int(v) for v in np.unravel_index(int(np.argmax(routed)), routed.shape))
    win = src[0, 0, max(r0, 0):r0 + kh, max(c0, 0):c0 + kw]
    return {"cell": (int(pi), int(pj)), "window": win.copy(), "window_origin": (int(r0), int(c0)),
            "max": float(pooled[0, 0, pi, pj]), "argmax": arg, "is_max": bool(routed[i, j] != 0),
            "routed": routed}


def explain_pixel(model, x, layer_index: int, at=(0, 0), channel: int = 0) -> PixelExplanation:
    """Explain one output value of a Conv2d layer of ``model`` on one input, forward and backward.

    Forward: the window on the conv's input (with padding and stride), the patch, the
    filter, the products, bias and their sum, checked against the model's own output, then
    the activation (and max pooling) that follow. Backward: a one-hot upstream gradient at
    that position is sent through cnnlab's own ``backward`` of the conv layer and every layer
    before it, giving the input pixels that value depends on and how strongly.

    Args:
        model: a ``Sequential``.
        x: one input (C, H, W) or a batch of one (1, C, H, W), the model's dtype.
        layer_index: index of a ``Conv2d`` layer in ``model.layers``.
        at: (i, j) output position.
        channel: output channel (filter index).

    Returns:
        a :class:`PixelExplanation`. Parameter gradients and caches are left as they were.

    Raises:
        ValueError: for a layer that is not a Conv2d, or a position/channel out of range.
    """
    layers = model.layers
    if not isinstance(layer_index, (int, np.integer)) or not -len(layers) <= layer_index < len(layers):
        raise ValueError(f"layer_index must be an int in [0, {len(layers) - 1}]; received {layer_index!r}.")
    layer_index = int(layer_index) % len(layers)
    layer = layers[layer_index]
    if not _is_conv(layer):
        convs = [k for k, l in enumerate(layers) if _is_conv(l)]
        raise ValueError(f"explain_pixel explains a Conv2d layer; layer {layer_index} is {_kind(layer)}. "
                         f"Conv2d layers are at indices {convs}.")
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]  # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"explain_pixel expected one input (C, H, W) or (1, C, H, W); received shape {x.shape}.")
    outputs = model.intermediate_outputs(x)
    out = outputs[layer_index]  # (1, F, H_out, W_out)
    i, j = (int(v) for v in at)
    if not (0 <= channel < out.shape[1] and 0 <= i < out.shape[2] and 0 <= j < out.shape[3]):
        raise ValueError(f"layer {layer_index} output has {out.shape[1]} channels of {out.shape[2]}x{out.shape[3]}; "
                         f"received channel {channel} at ({i}, {j}).")
    layer_in = x if layer_index == 0 else outputs[layer_index - 1]  # (1, C_in, H, W)
    (kh, kw), stride, padding = _window(layer)
    w = layer.weight.data[channel]  # (C_in, KH, KW)
    bias = 0.0 if getattr(layer, "bias", None) is None else float(layer.bias.data[channel])
    rows = i * stride[0] - padding[0] + np.arange(kh)
    cols = j * stride[1] - padding[1] + np.arange(kw)
    padded = np.pad(layer_in[0], ((0, 0), (padding[0],) * 2, (padding[1],) * 2))  # (C_in, H+2ph, W+2pw)
    patch = padded[:, rows[0] + padding[0]:rows[-1] + padding[0] + 1, cols[0] + padding[1]:cols[-1] + padding[1] + 1]
    terms = patch.astype(np.float64) * w.astype(np.float64)
    pre = float(terms.sum() + bias)

    act_name = act_value = pool = None
    nxt = layer_index + 1
    if nxt < len(layers) and _kind(layers[nxt]) in _ACTIVATIONS:
        act_name, act_value = _kind(layers[nxt]), float(outputs[nxt][0, channel, i, j])
        nxt += 1
    if nxt < len(layers) and _kind(layers[nxt]) == "MaxPool2d":
        pool = _pool_routing(outputs[nxt - 1][:, channel:channel + 1], layers[nxt], (i, j))
        if pool is not None:
            pool["layer_index"] = nxt

    # Backward: a one-hot upstream gradient, through cnnlab's own backward passes.
    saved = [(p, p.grad) for lyr in layers[:layer_index + 1] for p in lyr.parameters()]
    caches = [lyr._cache for lyr in layers[:layer_index + 1]]
    try:
        h = x
        for lyr in layers[:layer_index + 1]:
            h = lyr.forward(h, training=False, requires_grad=True)
        dout = np.zeros_like(h)
        dout[0, channel, i, j] = 1
        steps = []
        for k in range(layer_index, -1, -1):
            dout = layers[k].backward(dout)
            steps.append((layers[k].name or _kind(layers[k]).lower(), dout[0].copy()))
    finally:
        for p, g in saved:
            p.grad = g
        for lyr, c in zip(layers[:layer_index + 1], caches):
            lyr._cache = c

    return PixelExplanation(
        layer_index=layer_index, layer_name=layer.name or "conv2d", at=(i, j), channel=int(channel),
        stride=stride, padding=padding, window_rows=rows, window_cols=cols, layer_input=layer_in[0].copy(),
        patch=patch.copy(), kernel=w.copy(), terms=terms, bias=bias, pre_activation=pre,
        model_pre_activation=float(out[0, channel, i, j]), activation_name=act_name, activation=act_value,
        pool=pool, grad_layer_input=steps[0][1], grad_input=steps[-1][1], backward_steps=steps)
