"""The Convolution page's endpoints: presets are the tutorials' arrays, the learned filter is the
live model's, and the trace states its output size and "valid" / "same"."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets import load_mnist, worked_examples as we
from cnnlab.lab import filters


def test_input_presets_are_the_worked_examples(client):
    r = client.get("/api/play/conv-presets")
    assert r.status_code == 200, r.text
    inputs = r.json()["inputs"]
    for key, expected in [("edge", we.edge_image()), ("letter_o", we.letter_o()), ("letter_x", we.letter_x()),
                          ("checkerboard", we.checkerboard(8)), ("square", we.square(10, 4))]:
        np.testing.assert_array_equal(inputs[key]["image"], expected[None], err_msg=key)
    np.testing.assert_array_equal(inputs["ox_channels"]["image"], [we.letter_o(), we.letter_x()])
    assert np.array(inputs["rgb"]["image"]).shape == (3, 8, 8)
    _, (x, _) = load_mnist()
    digit = np.array(inputs["mnist"]["image"])  # (1, 20, 20): the centre of test digit 0, pixel / 255
    assert digit.shape == (1, 20, 20) and digit.max() <= 32
    np.testing.assert_allclose(digit[0], x[0, 4:24, 4:24] / 255, atol=0.05)


def test_kernel_presets_are_the_filters_and_the_tutorial_diagonal(client):
    kernels = client.get("/api/play/conv-presets").json()["kernels"]
    assert kernels["diagonal"]["kernel"] == [[2, 1, 0], [1, 0, -1], [0, -1, -2]]
    for key, name in [("vertical", "vertical_edge"), ("horizontal", "horizontal_edge"), ("blur", "box_blur"),
                      ("sharpen", "sharpen"), ("sobel_x", "sobel_x"), ("sobel_y", "sobel_y"), ("identity", "identity")]:
        np.testing.assert_array_equal(kernels[key]["kernel"], filters.KERNELS[name], err_msg=key)


def test_learned_filters_are_the_live_models_first_conv(client, app):
    learned = client.get("/api/play/conv-presets").json()["learned"]
    conv = app.state.live.model.layers[0]
    assert learned["layer"] == 0 and learned["model"] == "simple_cnn"
    np.testing.assert_array_equal(learned["filters"], conv.weight.data.astype(float))
    np.testing.assert_array_equal(learned["biases"], conv.bias.data.astype(float))


def test_trace_states_output_size_and_valid_or_same(client):
    edge = we.edge_image().tolist()
    valid = client.post("/api/play/conv", json={"image": edge, "kernel": filters.vertical_edge.tolist()}).json()
    assert valid["label"] == "valid" and valid["output_size"] == [5, 5]
    assert valid["formula"] == valid["formula_width"] == "floor((7 + 2*0 - 3) / 1) + 1 = 5"
    same = client.post("/api/play/conv", json={"image": edge, "kernel": filters.vertical_edge.tolist(),
                                               "padding": 1}).json()
    assert same["label"] == "same" and same["output_size"] == [7, 7]
    wide = client.post("/api/play/conv", json={"image": [[1] * 8] * 6, "kernel": [[1] * 3] * 3, "stride": 2,
                                               "padding": 1}).json()
    assert wide["label"] == "padded" and wide["output_size"] == [3, 4]
    assert wide["formula"].endswith("= 3") and wide["formula_width"] == "floor((8 + 2*1 - 3) / 2) + 1 = 4"


def test_presets_route_refuses_post_and_trace_errors_are_clear(client):
    r = client.post("/api/play/conv-presets", json={})
    assert r.status_code == 405 and "not allowed" in r.json()["error"]
    r = client.post("/api/play/conv", json={"image": [[1, 2], [3, 4]], "kernel": [[1] * 3] * 3})
    assert r.status_code == 400 and "larger than the padded input 2x2" in r.json()["error"]
