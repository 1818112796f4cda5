"""Plain-language descriptions of layers and models, with their numbers filled in.

``Layer.explain`` and ``Sequential.explain`` use these; ``cnnlab.lab.explain`` re-exports them.
"""
from __future__ import annotations

from cnnlab.ops.shapes import conv_output_size, to_pair

__all__ = ["explain_layer", "explain_model", "output_size"]


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
        >>> from cnnlab.models.zoo import ox_cnn
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
