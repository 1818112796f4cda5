"""The numbers of the Draw, Why and Model pages, from cnnlab's own code.

Input pixels are prepared exactly as ``cnnlab predict`` prepares an image file
(``cnnlab.datasets.load_image`` then ``to_float``), probabilities come from ``model.predict``,
feature maps from ``model.intermediate_outputs`` and explanations from
``cnnlab.lab.explain.explain_pixel`` / ``explain_dense`` (the implementation behind ``cnnlab explain``).
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np

from cnnlab.datasets import load_image, load_mnist, to_float
from cnnlab.lab.demos import toy_data
from cnnlab.lab.explain import explain_dense, explain_model, explain_pixel, receptive_field
from cnnlab.layers import AvgPool2d, Conv2d, Dense, MaxPool2d
from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward
from cnnlab.server.encode import array_json, num
from cnnlab.server.validation import BadRequest
from cnnlab.training import predict

#: test examples for a model's input shape: (C, H, W) -> data set name
EXAMPLE_SETS = {(1, 28, 28): "mnist", (1, 6, 6): "ox", (1, 8, 8): "lines"}


def _kind(layer) -> str:
    """The layer's class name, for the page (never for a decision: the layers say what they are)."""
    return type(layer).__name__


def image_shape(model) -> tuple[int, int]:
    """(H, W) of a single-channel image model; BadRequest for any other model."""
    shape = model.input_shape
    if shape is None or len(shape) != 3 or shape[0] != 1:
        raise BadRequest(f"the lab draws single-channel images; this model takes inputs of shape {shape}", 409)
    return int(shape[1]), int(shape[2])


@lru_cache(maxsize=4)
def _examples(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Test examples of a data set as uint8 (N, H, W) and labels (N,)."""
    if name == "mnist":
        _, (x, y) = load_mnist()
        return x, y
    _, (x, y) = toy_data(name)  # float (N, 1, H, W), noise around [0, 1]
    return np.round(np.clip(x[:, 0], 0, 1) * 255).astype(np.uint8), y


def example_count(model) -> int:
    name = EXAMPLE_SETS.get(tuple(model.input_shape or ()))
    return 0 if name is None else len(_examples(name)[0])


def example_pixels(model, index: int) -> tuple[np.ndarray, int]:
    """Test example ``index`` of the data set that fits the model: uint8 (H, W) and its label."""
    name = EXAMPLE_SETS.get(tuple(model.input_shape or ()))
    if name is None:
        raise BadRequest(f"no test examples for inputs of shape {model.input_shape}", 409)
    x, y = _examples(name)
    if not 0 <= index < len(x):
        raise BadRequest(f"example must be in [0, {len(x) - 1}]; received {index}")
    return x[index], int(y[index])


def image_pixels(model, data: bytes) -> np.ndarray:
    """An uploaded or drawn picture as the model sees it: ``cnnlab predict``'s preprocessing
    (``load_image``: grayscale, inverted if light, cropped, scaled, centred by mass). uint8 (H, W)."""
    try:
        return load_image(io.BytesIO(data), image_size=image_shape(model))
    except ValueError as err:
        raise BadRequest(str(err)) from None


def model_input(model, pixels: np.ndarray) -> np.ndarray:
    """uint8 (H, W) -> the model's input (1, 1, H, W), scaled as ``cnnlab predict`` scales it."""
    return to_float(np.asarray(pixels, dtype=np.uint8)[None])[:, None].astype(model.dtype)  # (1, 1, H, W)


def _scale(a: np.ndarray) -> dict:
    """One colour scale for a layer: sequential 0..max for non-negative maps, else symmetric."""
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0:
        return {"scale": "sequential", "vmin": 0.0, "vmax": hi,
                "legend": f"black = 0, brightest = {hi:.3g} (the largest value in this layer)"}
    m = max(abs(lo), abs(hi))
    return {"scale": "diverging", "vmin": -m, "vmax": m,
            "legend": f"blue = negative (down to {-m:.3g}), white = 0, red = positive (up to {m:.3g})"}


def draw_result(model, pixels: np.ndarray, label: int | None = None) -> dict:
    """Probabilities and every layer's feature maps for one input (the Draw page)."""
    x = model_input(model, pixels)  # (1, 1, H, W)
    probs = predict(model, x)[0]  # (K,): the same call as cnnlab predict
    outputs = model.intermediate_outputs(x)
    layers = []
    for k, (layer, out) in enumerate(zip(model.layers, outputs)):
        if out.ndim != 4:
            continue
        layers.append({"index": k, "name": layer.name, "kind": _kind(layer), **_scale(out[0]),
                       "maps": array_json(out[0])})  # (C, H, W)
    last = outputs[-1][0]
    return {"pixels": {"shape": [1, *pixels.shape], "data": np.asarray(pixels).ravel().tolist()},
            "probabilities": [float(p) for p in probs], "predicted": int(np.argmax(probs)),
            "logits": [num(v) for v in last], "logit_layer": _last_dense(model), "label": label,
            "layers": layers}


def _last_dense(model) -> int | None:
    dense = [k for k, l in enumerate(model.layers) if isinstance(l, Dense)]
    return dense[-1] if dense and dense[-1] == len(model.layers) - 1 else None


# ----- Why this value? ------------------------------------------------------------------------
def _resolve_conv_unit(model, outputs, layer: int, c: int, i: int, j: int) -> tuple[int, tuple[int, int], list]:
    """The Conv2d unit behind unit (c, i, j) of layer ``layer``'s map: the same position through
    element-wise layers; through a max pool, the window position its backward routes to (the
    max); through an average pool, the window's first position. Returns (conv index, (i, j), notes)."""
    notes = []
    while not isinstance(model.layers[layer], Conv2d):
        kind = _kind(model.layers[layer])
        if layer == 0:
            raise BadRequest(f"layer {layer} ({kind}) has no Conv2d before it to explain")
        if model.layers[layer].elementwise:
            notes.append(f"{model.layers[layer].name} ({kind}) acts on each value alone: the same position before it")
        elif isinstance(model.layers[layer], (MaxPool2d, AvgPool2d)):
            (kh, kw), stride, padding = model.layers[layer].window()
            src = outputs[layer - 1][:, c:c + 1]  # (1, 1, H, W)
            if isinstance(model.layers[layer], MaxPool2d):
                pooled, cache = maxpool2d_forward(src, (kh, kw), stride, padding)
                dout = np.zeros_like(pooled)
                dout[0, 0, i, j] = 1
                routed = maxpool2d_backward(dout, cache)[0, 0]  # (H, W): one-hot at the window's max
                i, j = (int(v) for v in np.unravel_index(int(np.argmax(routed)), routed.shape))
                notes.append(f"{model.layers[layer].name} (MaxPool2d) passes on its window's max, at ({i}, {j}) below")
            else:
                i, j = max(0, i * stride[0] - padding[0]), max(0, j * stride[1] - padding[1])
                notes.append(f"{model.layers[layer].name} (AvgPool2d) averages its window; explaining its first "
                             f"position ({i}, {j})")
        else:
            raise BadRequest(f"layer {layer} is {kind}; the lab explains units of Conv2d layers and of the "
                             f"element-wise and pooling layers after them")
        layer -= 1
    return layer, (i, j), notes


def _field_box(model, conv_index: int, at: tuple[int, int], hw: tuple[int, int]) -> dict:
    """The receptive field of a conv unit on the input, from ``cnnlab.lab.explain.receptive_field``."""
    row = next(r for r in receptive_field(model)[0] if r.index == conv_index)
    box = {}
    for axis, name in ((0, "rows"), (1, "cols")):
        centre = row.start[axis] + at[axis] * row.jump[axis]
        lo = int(np.ceil(centre - (row.size[axis] - 1) / 2))
        box[name] = [max(lo, 0), min(lo + row.size[axis] - 1, hw[axis] - 1)]
    box["size"] = list(row.size)
    return box


def _backward_views(steps, layers) -> list:
    """Each backward step's gradient summed over channels (|.|), for the pooling routing view."""
    views = []
    for (name, grad), layer in zip(steps, reversed(layers[:len(steps)])):
        if grad.ndim == 3:
            views.append({"after": name, "kind": _kind(layer), "nonzero": int(np.count_nonzero(grad)),
                          "map": array_json(np.abs(grad).sum(axis=0))})  # (H, W)
    return views


def explain_unit(model, pixels: np.ndarray, layer: int, channel: int = 0, row: int = 0, col: int = 0) -> dict:
    """One unit of any feature map (or a logit), forward and backward (the Why page)."""
    x = model_input(model, pixels)
    hw = tuple(pixels.shape)
    if not 0 <= layer < len(model.layers):
        raise BadRequest(f"layer must be in [0, {len(model.layers) - 1}]; received {layer}")
    kind = _kind(model.layers[layer])
    outputs = model.intermediate_outputs(x)
    if isinstance(model.layers[layer], Dense):
        try:
            e = explain_dense(model, x, layer, channel)
        except ValueError as err:
            raise BadRequest(str(err)) from None
        order = np.argsort(-np.abs(e.terms), kind="stable")[:10]
        return {"kind": "dense", "layer": layer, "layer_name": e.layer_name, "unit": e.unit,
                "value": e.model_value, "n_terms": int(e.terms.size), "terms_sum": float(e.terms.sum()),
                "bias": e.bias, "pre_activation": e.pre_activation, "model_value": e.model_value,
                "top_terms": [{"input": int(k), "x": float(e.layer_input[k]), "w": float(e.weights[k]),
                               "product": float(e.terms[k])} for k in order],
                "grad_input": array_json(e.grad_input[0]), "steps": _backward_views(e.backward_steps, model.layers),
                "text": str(e)}
    out = outputs[layer]
    if out.ndim != 4:
        raise BadRequest(f"layer {layer} ({kind}) has no feature map; click a map or a logit")
    C, H, W = out.shape[1:]
    if not (0 <= channel < C and 0 <= row < H and 0 <= col < W):
        raise BadRequest(f"layer {layer} has {C} channels of {H}x{W}; received channel {channel} at ({row}, {col})")
    value = float(out[0, channel, row, col])
    conv, at, notes = _resolve_conv_unit(model, outputs, layer, channel, row, col)
    e = explain_pixel(model, x, conv, at=at, channel=channel)
    result = {"kind": "conv", "layer": layer, "layer_kind": kind, "layer_name": model.layers[layer].name,
              "channel": channel, "at": [row, col], "value": value, "notes": notes,
              "conv": {"layer": conv, "name": e.layer_name, "at": list(e.at), "stride": list(e.stride),
                       "padding": list(e.padding)},
              "field": _field_box(model, conv, e.at, hw),
              "channel_sums": [float(v) for v in e.terms.sum(axis=(1, 2))],  # (C_in,) partial sums
              "bias": e.bias, "pre_activation": e.pre_activation, "model_pre_activation": e.model_pre_activation,
              "activation_name": e.activation_name, "activation": e.activation,
              "grad_input": array_json(e.grad_input[0]), "steps": _backward_views(e.backward_steps, model.layers),
              "text": str(e)}
    if e.patch.shape[0] == 1:  # one input channel: show every product of the window
        result["window"] = {"patch": array_json(e.patch[0]), "kernel": array_json(e.kernel[0]),
                            "terms": array_json(e.terms[0])}
    if e.pool is not None:
        p = e.pool
        result["pool"] = {"layer": p["layer_index"], "cell": list(p["cell"]), "max": p["max"],
                          "argmax": list(p["argmax"]), "is_max": p["is_max"],
                          "window_origin": list(p["window_origin"]), "window": array_json(p["window"])}
    return result


# ----- Model page ------------------------------------------------------------------------------
def model_info(model, label: str) -> dict:
    """Summary table, explanation, receptive fields, sizes, parameter counts and filters."""
    shapes = model.layer_shapes()
    rf = {}
    try:
        rf = {r.index: r for r in receptive_field(model)[0]}
    except ValueError:
        pass
    layers = []
    for k, (layer, shape) in enumerate(zip(model.layers, shapes)):
        entry = {"index": k, "name": layer.name, "kind": _kind(layer), "repr": repr(layer),
                 "output_shape": list(shape), "parameters": int(layer.num_parameters())}
        if k in rf:
            entry["receptive_field"] = list(rf[k].size)
            entry["jump"] = list(rf[k].jump)
        if isinstance(layer, Conv2d):
            entry["filters"] = array_json(layer.weight.data)  # (F, C_in, KH, KW)
        layers.append(entry)
    return {"label": label, "name": model.name, "input_shape": list(model.input_shape or []),
            "parameters": int(model.num_parameters()), "summary": model.summary(print_fn=None),
            "explanation": explain_model(model), "layers": layers, "examples": example_count(model)}
