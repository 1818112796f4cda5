"""Playground 4, receptive field and output size: a stack of conv/pool windows on an input.

The stack is built from real cnnlab layers (``Conv2d``, ``MaxPool2d``), so their own checks
refuse bad settings; the sizes come from ``cnnlab.lab.explain.output_size`` (the formula with
its numbers) and the layers' ``output_shape``; the field, jump and start of every layer from
``cnnlab.lab.explain.receptive_field``. The presets are read off the zoo models' layers.
"""
from __future__ import annotations

from functools import lru_cache
from numbers import Integral

from cnnlab.lab.explain import output_size, receptive_field
from cnnlab.layers import Conv2d, MaxPool2d
from cnnlab.models import Sequential
from cnnlab.models.zoo import keras_tutorial_cnn, lenet5, simple_cnn
from cnnlab.server.validation import BadRequest, check_fields, get_choice, get_int

MAX_LAYERS = 12
MAX_SIDE = 1024
KINDS = ("conv", "pool")

#: the tutorials' erratum, quoted: 01's "Receptive Field Growth" gives pixel counts 9, 15, 21 for
#: three stacked 3x3 convolutions; the right counts are the squares of the fields 3, 5, 7.
TUTORIAL_ERRATUM = {"stack": "three 3x3 convs", "tutorial_pixels": [9, 15, 21]}


# ----- presets: read off real models ------------------------------------------------------------
def _three_convs() -> Sequential:
    """The tutorial's example: three stacked 3x3 convolutions, stride 1, no padding, on 7x7."""
    return Sequential([Conv2d(1, 1, 3, rng=0) for _ in range(3)], input_shape=(1, 7, 7), name="three 3x3 convs")


def _window_layers(model) -> list[dict]:
    """The conv/pool windows of a model, in order, up to its first Flatten/Dense (kernel,
    stride and padding are square in every preset, so one number each)."""
    layers = []
    for layer in model.layers:
        if not layer.keeps_spatial_layout:
            break
        window = layer.window(model.input_shape)
        if window is None:
            continue
        (k, _), (s, _), (p, _) = window
        kind = "conv" if isinstance(layer, Conv2d) else "pool"
        label = (f"Conv2d {layer.in_channels}->{layer.out_channels}" if kind == "conv" else type(layer).__name__)
        layers.append({"kind": kind, "kernel": int(k), "stride": int(s), "padding": int(p), "label": label})
    return layers


@lru_cache(maxsize=1)
def presets() -> tuple[dict, ...]:
    """The stacks the page offers, each with its input size, read off cnnlab models."""
    out = []
    for model in (_three_convs(), simple_cnn(seed=0), lenet5(seed=0), keras_tutorial_cnn(seed=0)):
        _, h, w = model.input_shape
        out.append({"name": model.name, "height": int(h), "width": int(w), "layers": _window_layers(model)})
    return tuple(out)


# ----- reading the request ----------------------------------------------------------------------
def _get_layer(i: int, item) -> dict:
    """Layer ``i`` of the request as {kind, kernel, stride, padding, label}."""
    if not isinstance(item, dict):
        raise BadRequest(f"layers[{i}] must be an object {{kind, kernel, stride, padding}}; received {item!r}")
    check_fields(item, {"kind", "kernel", "stride", "padding", "label"})
    kind = get_choice(item, "kind", KINDS)
    label = item.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 40):
        raise BadRequest(f"layers[{i}].label must be a text of at most 40 characters; received {label!r}")
    try:
        k = get_int(item, "kernel", 1, 11)
        s = get_int(item, "stride", 1, 5, default=1)
        p = get_int(item, "padding", 0, 5, default=0)
    except BadRequest as err:
        raise BadRequest(f"layers[{i}]: {err.message}") from None
    return {"kind": kind, "kernel": k, "stride": s, "padding": p, "label": label or ("Conv2d" if kind == "conv" else "MaxPool2d")}


def _build(spec: dict):
    """A real cnnlab layer for one spec (its constructor checks the settings)."""
    if spec["kind"] == "conv":
        return Conv2d(1, 1, spec["kernel"], stride=spec["stride"], padding=spec["padding"], rng=0)
    return MaxPool2d(spec["kernel"], stride=spec["stride"], padding=spec["padding"])


def _describe(spec: dict) -> str:
    return f"{spec['kind']} {spec['kernel']}x{spec['kernel']}, stride {spec['stride']}, padding {spec['padding']}"


# ----- the arithmetic laid out --------------------------------------------------------------------
def _sizes(specs: list[dict], H: int, W: int) -> list[dict]:
    """Per layer: input and output size and the output-size formula with numbers, per axis;
    refuses, naming the layer, the first window that does not fit."""
    rows, (h, w) = [], (H, W)
    for i, spec in enumerate(specs, start=1):
        k, s, p = spec["kernel"], spec["stride"], spec["padding"]
        try:
            (oh, fh), (ow, fw) = output_size(h, k, s, p), output_size(w, k, s, p)
        except ValueError as err:
            raise BadRequest(f"layer {i} ({_describe(spec)}) gets a {h}x{w} input: the output would have fewer "
                             f"than 1 row or column ({err}) Remove a layer or use a larger input.") from None
        rows.append({"in": [h, w], "out": [oh, ow], "formula": [_numbers_only(fh), _numbers_only(fw)]})
        h, w = oh, ow
    return rows


def _numbers_only(text: str) -> str:
    """``"out = floor((n + 2p - k) / s) + 1 = floor((7 + 2*0 - 3) / 1) + 1 = ..."`` without its
    symbolic first part (the page writes that once, in the table header)."""
    return text.split(" = ", 2)[2]


def _coverage(rh: int, rw: int, H: int, W: int) -> dict:
    """An rh x rw field clipped to the H x W input: pixels and percent of the input."""
    ch, cw = min(rh, H), min(rw, W)
    pixels = ch * cw
    return {"clipped": [ch, cw], "pixels": pixels, "percent": 100.0 * pixels / (H * W),
            "text": f"{ch}x{cw} = {pixels:,} px = {100.0 * pixels / (H * W):.1f}% of {H}x{W}"}


def _box(row, unit, H: int, W: int) -> dict:
    """The input pixels that unit (r, c) of a layer sees: [top, left, bottom, right], inclusive,
    negative or past the edge where it lies in the padding, and the same box clipped to the input."""
    box = []
    for axis in (0, 1):  # first pixel = centre - (field - 1) / 2; centre = start + unit * jump
        first = row.start[axis] + unit[axis] * row.jump[axis] - (row.size[axis] - 1) / 2
        box.append(int(round(first)))
    top, left = box
    bottom, right = top + row.size[0] - 1, left + row.size[1] - 1
    clipped = [max(top, 0), max(left, 0), min(bottom, H - 1), min(right, W - 1)]
    ch, cw = max(clipped[2] - clipped[0] + 1, 0), max(clipped[3] - clipped[1] + 1, 0)
    return {"box": [top, left, bottom, right], "clipped": clipped, "pixels": ch * cw,
            "percent": 100.0 * ch * cw / (H * W), "text": f"{ch}x{cw} = {ch * cw:,} px = {100.0 * ch * cw / (H * W):.1f}%"}


def _previous_unit(u: int, k: int, s: int, p: int, n_prev: int) -> int:
    """The unit of the previous layer that leads to unit ``u`` along one axis: the centre of
    its window, moved inside the real (unpadded) positions when the window reaches into padding."""
    first = u * s - p
    centre = first + (k - 1) // 2
    lo, hi = max(first, 0), min(first + k - 1, n_prev - 1)
    return min(max(centre, lo), hi) if lo <= hi else centre


def _chain(rf_rows, size_rows, specs, unit, H, W) -> list[dict]:
    """Nested boxes: the chosen unit of the last layer, then the unit of each earlier layer
    that leads to it, down to one input pixel (each box inside the next)."""
    chain, u = [], list(unit)
    for layer in range(len(specs), -1, -1):
        chain.append({"layer": layer, "unit": list(u), **_box(rf_rows[layer], u, H, W)})
        if layer:
            spec, (nh, nw) = specs[layer - 1], size_rows[layer - 1]["in"]
            k, s, p = spec["kernel"], spec["stride"], spec["padding"]
            u = [_previous_unit(u[0], k, s, p, nh), _previous_unit(u[1], k, s, p, nw)]
    return chain[::-1]  # input pixel first, chosen unit last


def receptive_fields(data: dict) -> dict:
    """Output size, receptive field, jump and coverage of every layer of a conv/pool stack, and
    the nested input boxes of one unit of the last layer.

    Request: ``height``/``width`` 1-1024 (default 28); ``layers``: 1-12 of ``{kind: "conv"|"pool",
    kernel 1-11, stride 1-5, padding 0-5, label}``; ``unit``: [row, col] of the last layer's output
    (default its centre). Without ``layers``: the first preset.

    Returns ``layers`` (the input first): size, formula per axis, field ``rf``, ``jump``, ``start``,
    coverage; ``chain``: per layer the box [top, left, bottom, right] in input pixels (inclusive,
    may reach into the padding) of the unit leading to the chosen one, and the box clipped;
    ``view``: the rows/cols to draw; ``presets``; ``erratum``.
    """
    check_fields(data, {"height", "width", "layers", "unit"})
    H = get_int(data, "height", 1, MAX_SIDE, default=28)
    W = get_int(data, "width", 1, MAX_SIDE, default=H)
    items = data.get("layers")
    if items is None:
        preset = presets()[0]
        items, H, W = preset["layers"], preset["height"], preset["width"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_LAYERS:
        got = f"{len(items)} layers" if isinstance(items, list) else repr(items)
        raise BadRequest(f"layers must be a list of 1 to {MAX_LAYERS} layers; received {got}")
    specs = [_get_layer(i, item) for i, item in enumerate(items)]
    body = _compute(H, W, specs, data)
    return {**body, "presets": list(presets()), "erratum": _erratum()}


def _compute(H: int, W: int, specs: list[dict], data: dict) -> dict:
    """The response of :func:`receptive_fields` without presets and erratum."""
    layers = []
    for i, spec in enumerate(specs, start=1):
        try:
            layers.append(_build(spec))
        except ValueError as err:
            raise BadRequest(f"layer {i} ({_describe(spec)}): {err}") from None
    size_rows = _sizes(specs, H, W)
    rf_rows, _ = receptive_field(Sequential(layers, input_shape=(1, H, W)), (1, H, W))
    last = size_rows[-1]["out"]
    unit = _get_unit(data, last)
    out = [{"index": 0, "label": "input", "kind": "input", "out": [H, W], "rf": [1, 1], "jump": [1, 1],
            "coverage": _coverage(1, 1, H, W)}]
    for i, (spec, sizes, row, prev) in enumerate(zip(specs, size_rows, rf_rows[1:], rf_rows), start=1):
        if list(row.output_shape[1:]) != sizes["out"]:  # the formula and the layer must agree
            raise RuntimeError(f"layer {i}: formula gives {sizes['out']}, the layer {row.output_shape}")
        k, s = spec["kernel"], spec["stride"]
        out.append({"index": i, **spec, **sizes, "rf": list(row.size), "jump": list(row.jump), "start": list(row.start),
                    "rf_formula": f"{prev.size[0]} + ({k} - 1)*{prev.jump[0]} = {row.size[0]}",
                    "jump_formula": f"{prev.jump[0]}*{s} = {row.jump[0]}",
                    "coverage": _coverage(row.size[0], row.size[1], H, W)})
    chain = _chain(rf_rows, size_rows, specs, unit, H, W)
    view = [min([0] + [c["box"][0] for c in chain]), min([0] + [c["box"][1] for c in chain]),
            max([H - 1] + [c["box"][2] for c in chain]), max([W - 1] + [c["box"][3] for c in chain])]
    return {"height": H, "width": W, "layers": out, "unit": unit, "chain": chain, "view": view}


def _get_unit(data: dict, last: list[int]) -> list[int]:
    """[row, col] of the chosen unit of the last layer's output (default: its centre)."""
    unit = data.get("unit")
    if unit is None:
        return [(last[0] - 1) // 2, (last[1] - 1) // 2]
    ok = (isinstance(unit, list) and len(unit) == 2
          and all(isinstance(v, Integral) and not isinstance(v, bool) for v in unit))
    if not ok or not (0 <= unit[0] < last[0] and 0 <= unit[1] < last[1]):
        raise BadRequest(f"unit must be [row, col] inside the last layer's {last[0]}x{last[1]} output "
                         f"(rows 0-{last[0] - 1}, cols 0-{last[1] - 1}); received {unit!r}")
    return [int(unit[0]), int(unit[1])]


@lru_cache(maxsize=1)
def _erratum() -> dict:
    """The tutorial's numbers next to cnnlab's for its own example (three 3x3 convs on 7x7)."""
    preset = presets()[0]
    body = _compute(preset["height"], preset["width"], preset["layers"], {})
    fields = [row["rf"][0] for row in body["layers"][1:]]
    return {**TUTORIAL_ERRATUM, "fields": fields, "pixels": [r * r for r in fields],
            "text": (f"Erratum: the tutorial says three stacked 3x3 convolutions see "
                     f"{', '.join(map(str, TUTORIAL_ERRATUM['tutorial_pixels']))} pixels. Their receptive fields are "
                     + ", ".join(f"{r}x{r}" for r in fields) + " = "
                     + ", ".join(str(r * r) for r in fields) + " pixels: each 3x3 layer adds 2 to the side "
                     "of the field, and the pixels it sees are the side squared.")}
