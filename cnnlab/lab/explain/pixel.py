"""One output value of a convolution (or of a Dense layer, e.g. a logit), read off a real model's
forward and backward passes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.layers import Conv2d, Dense, MaxPool2d
from cnnlab.layers.describe import hw_text
from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward


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
    def channel_sums(self) -> np.ndarray:
        """Each input channel's partial sum ``terms[c].sum()`` (C_in,), float64: with the bias
        they add up to ``pre_activation``."""
        return self.terms.sum(axis=(1, 2))

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
            f"cols {self.window_cols[0]}..{self.window_cols[-1]} (stride {hw_text(self.stride)}, "
            f"padding {hw_text(self.padding)}; out-of-range rows/cols are zero padding)",
            f"  {self.multiply_add}",
        ]
        c_in, kh, kw = self.terms.shape
        if c_in > 1:
            parts = f"{self.channel_sums[0]:.4g}" + "".join(f" {'-' if v < 0 else '+'} {abs(v):.4g}"
                                                            for v in self.channel_sums[1:])
            lines.append(f"  per input channel ({c_in} channels x {kh}x{kw} products each): {parts} "
                         f"+ bias {self.bias:.4g} = {self.pre_activation:.6g}")
        lines.append(f"  model's own output there: {self.model_pre_activation:.6g}")
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




def _pool_routing(src: np.ndarray, layer, at: tuple[int, int]) -> dict | None:
    """Which max-pool cell position ``at`` of ``src`` (1, 1, H, W) feeds, and whether cnnlab's
    maxpool backward routes that cell's gradient to it (None if the pooling skips ``at``)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.window()
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
    layer_index, x = _check_layer_and_input(model, layer_index, x, Conv2d, "explain_pixel")
    layer = layers[layer_index]
    outputs = model.intermediate_outputs(x)
    out = outputs[layer_index]  # (1, F, H_out, W_out)
    i, j = (int(v) for v in at)
    if not (0 <= channel < out.shape[1] and 0 <= i < out.shape[2] and 0 <= j < out.shape[3]):
        raise ValueError(f"layer {layer_index} output has {out.shape[1]} channels of {out.shape[2]}x{out.shape[3]}; "
                         f"received channel {channel} at ({i}, {j}).")
    layer_in = x if layer_index == 0 else outputs[layer_index - 1]  # (1, C_in, H, W)
    (kh, kw), stride, padding = layer.window()
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
    if nxt < len(layers) and layers[nxt].is_activation:
        act_name, act_value = type(layers[nxt]).__name__, float(outputs[nxt][0, channel, i, j])
        nxt += 1
    if nxt < len(layers) and isinstance(layers[nxt], MaxPool2d):
        pool = _pool_routing(outputs[nxt - 1][:, channel:channel + 1], layers[nxt], (i, j))
        if pool is not None:
            pool["layer_index"] = nxt

    steps = _one_hot_backward(model, x, layer_index, (channel, i, j))

    return PixelExplanation(
        layer_index=layer_index, layer_name=layer.name or "conv2d", at=(i, j), channel=int(channel),
        stride=stride, padding=padding, window_rows=rows, window_cols=cols, layer_input=layer_in[0].copy(),
        patch=patch.copy(), kernel=w.copy(), terms=terms, bias=bias, pre_activation=pre,
        model_pre_activation=float(out[0, channel, i, j]), activation_name=act_name, activation=act_value,
        pool=pool, grad_layer_input=steps[0][1], grad_input=steps[-1][1], backward_steps=steps)


def _check_layer_and_input(model, layer_index, x, cls: type, who: str) -> tuple[int, np.ndarray]:
    """``(layer_index >= 0, x as (1, C, H, W))`` after checking the layer is a ``kind`` and x one input."""
    layers = model.layers
    if not isinstance(layer_index, (int, np.integer)) or not -len(layers) <= layer_index < len(layers):
        raise ValueError(f"layer_index must be an int in [0, {len(layers) - 1}]; received {layer_index!r}.")
    layer_index = int(layer_index) % len(layers)
    kind = cls.__name__  # for the message only
    if not isinstance(layers[layer_index], cls):
        found = [k for k, l in enumerate(layers) if isinstance(l, cls)]
        raise ValueError(f"{who} explains a {kind} layer; layer {layer_index} is {type(layers[layer_index]).__name__}. "
                         f"{kind} layers are at indices {found}.")
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[None]  # (1, C, H, W)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"{who} expected one input (C, H, W) or (1, C, H, W); received shape {x.shape}.")
    return layer_index, x


def _one_hot_backward(model, x: np.ndarray, layer_index: int, unit: tuple) -> list:
    """Send a one-hot upstream gradient at ``unit`` of layer ``layer_index``'s output back to the
    input through cnnlab's own ``backward`` of every layer; parameter gradients and caches are
    left as they were (``model.preserved_state``).

    Returns:
        ``[(layer name, d(unit) / d(that layer's input))]``, from the layer back to the input,
        each without the batch axis.
    """
    layers = model.layers
    with model.preserved_state():
        h = x
        for lyr in layers[:layer_index + 1]:
            h = lyr.forward(h, training=False, requires_grad=True)
        dout = np.zeros_like(h)
        dout[(0, *unit)] = 1
        steps = []
        for k in range(layer_index, -1, -1):
            dout = layers[k].backward(dout)
            steps.append((layers[k].name or type(layers[k]).__name__.lower(), dout[0].copy()))
    return steps


@dataclass
class DenseExplanation:
    """One output value of a Dense layer (e.g. a logit), with real numbers.

    Attributes:
        layer_index, layer_name, unit: the Dense layer and its output unit.
        layer_input: the layer's input for this sample (in_features,).
        weights: the unit's weight column ``weight[:, unit]`` (in_features,).
        terms: ``layer_input * weights`` in float64 (in_features,).
        bias, pre_activation: the bias and ``terms.sum() + bias``.
        model_value: the model's own output there.
        grad_input: d(unit) / d(model input), through every earlier layer's backward (C, H, W).
        backward_steps: as in :class:`PixelExplanation`.
    """

    layer_index: int
    layer_name: str
    unit: int
    layer_input: np.ndarray
    weights: np.ndarray
    terms: np.ndarray
    bias: float
    pre_activation: float
    model_value: float
    grad_input: np.ndarray
    backward_steps: list

    def __str__(self) -> str:
        top = np.argsort(-np.abs(self.terms), kind="stable")[:5]
        parts = ", ".join(f"in[{k}] {self.layer_input[k]:.3g}*{self.weights[k]:.3g}" for k in top)
        return (f"{self.layer_name}: unit {self.unit} = sum of {self.terms.size} products + bias {self.bias:.4g} "
                f"= {self.pre_activation:.6g} (model: {self.model_value:.6g}); largest terms: {parts}")


def explain_dense(model, x, layer_index: int, unit: int = 0) -> DenseExplanation:
    """Explain one output value of a Dense layer of ``model`` (a logit for the last layer):
    its products ``input * weight``, bias and sum, checked against the model's own output,
    and its gradient with respect to the model input through cnnlab's backward passes.

    Args:
        model: a ``Sequential``; x: one input (C, H, W) or (1, C, H, W) of the model's dtype.
        layer_index: index of a ``Dense`` layer; unit: its output unit.

    Raises:
        ValueError: a layer that is not Dense, or a unit out of range.
    """
    layers = model.layers
    layer_index, x = _check_layer_and_input(model, layer_index, x, Dense, "explain_dense")
    layer = layers[layer_index]
    outputs = model.intermediate_outputs(x)
    out = outputs[layer_index]  # (1, out_features)
    if not isinstance(unit, (int, np.integer)) or not 0 <= unit < out.shape[1]:
        raise ValueError(f"layer {layer_index} has {out.shape[1]} output units; received unit {unit!r}.")
    unit = int(unit)
    layer_in = (x if layer_index == 0 else outputs[layer_index - 1]).reshape(-1)  # (in_features,)
    w = layer.weight.data[:, unit]  # (in_features,): cnnlab's Dense weight is (in, out)
    bias = 0.0 if getattr(layer, "bias", None) is None else float(layer.bias.data[unit])
    terms = layer_in.astype(np.float64) * w.astype(np.float64)
    steps = _one_hot_backward(model, x, layer_index, (unit,))
    return DenseExplanation(
        layer_index=layer_index, layer_name=layer.name or "dense", unit=unit, layer_input=layer_in.copy(),
        weights=w.copy(), terms=terms, bias=bias, pre_activation=float(terms.sum() + bias),
        model_value=float(out[0, unit]), grad_input=steps[-1][1], backward_steps=steps)
