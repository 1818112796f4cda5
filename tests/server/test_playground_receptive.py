"""/api/play/receptive: output sizes, receptive fields and nested boxes of a conv/pool stack."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.layers import Conv2d, MaxPool2d
from cnnlab.lab.explain import receptive_field
from cnnlab.models import Sequential
from cnnlab.models.zoo import keras_tutorial_cnn, lenet5, simple_cnn

CONV3 = {"kind": "conv", "kernel": 3, "stride": 1, "padding": 0}


def post(client, payload):
    r = client.post("/api/play/receptive", json=payload)
    assert r.status_code == 200, r.text
    return r.json()


def spatial_shapes(model, size):
    """(H, W) after every conv/pool layer of a model, from a real forward pass on zeros."""
    x = np.zeros((1, 1, size, size), dtype=np.float32)
    shapes = []
    for layer in model.layers:
        if not layer.keeps_spatial_layout:
            break
        x = layer.forward(x)
        if layer.window() is not None:
            shapes.append(list(x.shape[2:]))
    return shapes


def test_three_stacked_3x3_convs_see_3_5_7(client):
    body = post(client, {"height": 7, "layers": [CONV3] * 3})
    rows = body["layers"][1:]
    assert [r["rf"] for r in rows] == [[3, 3], [5, 5], [7, 7]]
    assert [r["coverage"]["pixels"] for r in rows] == [9, 25, 49]
    assert [r["out"] for r in rows] == [[5, 5], [3, 3], [1, 1]]
    assert rows[-1]["coverage"]["percent"] == 100.0
    assert body["erratum"]["pixels"] == [9, 25, 49] and body["erratum"]["tutorial_pixels"] == [9, 15, 21]
    assert "9, 25, 49" in body["erratum"]["text"]


@pytest.mark.parametrize("build, size", [(simple_cnn, 28), (simple_cnn, 32), (lenet5, 28), (lenet5, 36),
                                         (keras_tutorial_cnn, 28)])
def test_preset_sizes_equal_a_real_forward_pass(client, build, size):
    model = build(seed=0)
    preset = next(p for p in post(client, {})["presets"] if p["name"] == model.name)
    body = post(client, {"height": size, "layers": preset["layers"]})
    assert [r["out"] for r in body["layers"][1:]] == spatial_shapes(model, size)
    rows, _ = receptive_field(model)  # fields and jumps do not depend on the input size
    assert [r["rf"] for r in body["layers"][1:]] == [list(r.size) for r in rows[1:]]
    assert [r["jump"] for r in body["layers"][1:]] == [list(r.jump) for r in rows[1:]]


def test_presets_are_the_zoo_models_windows(client):
    presets = {p["name"]: p for p in post(client, {})["presets"]}
    assert set(presets) == {"three 3x3 convs", "simple_cnn", "lenet5", "keras_tutorial_cnn"}
    assert [(l["kind"], l["kernel"], l["stride"], l["padding"]) for l in presets["lenet5"]["layers"]] == [
        ("conv", 5, 1, 2), ("pool", 2, 2, 0), ("conv", 5, 1, 0), ("pool", 2, 2, 0)]
    assert len(presets["keras_tutorial_cnn"]["layers"]) == 5


def test_rectangular_input_and_stride(client):
    layers = [{"kind": "conv", "kernel": 3, "stride": 2, "padding": 1}, {"kind": "pool", "kernel": 2, "stride": 2}]
    body = post(client, {"height": 20, "width": 11, "layers": layers})
    model = Sequential([Conv2d(1, 1, 3, stride=2, padding=1, rng=0), MaxPool2d(2)])
    assert body["layers"][-1]["out"] == list(model.forward(np.zeros((1, 1, 20, 11), np.float32)).shape[2:])
    assert "floor((20 + 2*1 - 3) / 2) + 1" in body["layers"][1]["formula"][0]
    assert body["layers"][1]["formula"][1].endswith("= 6")  # width: floor(10/2) + 1


def brute_force_box(model_layers, unit, H, W):
    """The input pixels a unit depends on, found by a unit impulse backward (ones upstream)."""
    model = Sequential(model_layers)
    x = np.random.default_rng(0).normal(size=(1, 1, H, W)).astype(np.float32)
    out = model.forward(x, requires_grad=True)
    dout = np.zeros_like(out)
    dout[0, 0, unit[0], unit[1]] = 1.0
    grad = model.backward(dout)[0, 0]
    rows, cols = np.nonzero(grad)
    return [rows.min(), cols.min(), rows.max(), cols.max()]


def test_boxes_are_nested_and_match_the_gradient(client):
    layers = [CONV3, {"kind": "conv", "kernel": 3, "stride": 2, "padding": 1}, CONV3]
    body = post(client, {"height": 13, "layers": layers, "unit": [2, 1]})
    chain = body["chain"]
    assert [c["layer"] for c in chain] == [0, 1, 2, 3]
    for inner, outer in zip(chain, chain[1:]):
        (t, l, b, r), (T, L, B, R) = inner["box"], outer["box"]
        assert T <= t and L <= l and b <= B and r <= R
    convs = []
    for spec in layers:
        conv = Conv2d(1, 1, 3, stride=spec["stride"], padding=spec["padding"], rng=0)
        conv.weight.data[...] = 1.0  # positive weights: every pixel in the field reaches the unit
        convs.append(conv)
    assert chain[-1]["clipped"] == brute_force_box(convs, [2, 1], 13, 13)
    assert chain[-1]["box"][2] - chain[-1]["box"][0] + 1 == body["layers"][-1]["rf"][0]
    assert body["view"][0] <= min(c["box"][0] for c in chain)


def test_corner_unit_reaches_into_the_padding(client):
    layers = [{"kind": "conv", "kernel": 3, "stride": 1, "padding": 1}] * 2
    body = post(client, {"height": 8, "layers": layers, "unit": [0, 0]})
    last = body["chain"][-1]
    assert last["box"] == [-2, -2, 2, 2] and last["clipped"] == [0, 0, 2, 2] and last["pixels"] == 9
    assert body["view"][:2] == [-2, -2]


@pytest.mark.parametrize("payload, words", [
    ({"height": 5, "layers": [CONV3] * 3}, ["layer 3", "3x3", "1x1 input", "fewer than 1"]),
    ({"height": 28, "layers": []}, ["1 to 12 layers", "0 layers"]),
    ({"height": 28, "layers": [{"kind": "dense", "kernel": 3}]}, ["kind", "dense"]),
    ({"height": 28, "layers": [{"kind": "conv", "kernel": 0}]}, ["layers[0]", "kernel"]),
    ({"height": 28, "layers": [{"kind": "pool", "kernel": 2, "padding": 2}]}, ["layer 1", "padding", "half"]),
    ({"height": 0, "layers": [CONV3]}, ["height"]),
    ({"height": 9, "layers": [CONV3], "unit": [7, 0]}, ["unit", "7x7"]),
    ({"height": 9, "layers": [CONV3], "size": 3}, ["unknown"]),
])
def test_bad_stacks_are_refused_with_a_clear_message(client, payload, words):
    r = client.post("/api/play/receptive", json=payload)
    assert 400 <= r.status_code < 500, r.text
    for word in words:
        assert word in r.json()["error"], (word, r.json())
