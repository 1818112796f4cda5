"""The lab's endpoints give cnnlab's own numbers: predict's preprocessing and probabilities, the
model's feature maps, explain_pixel / explain_dense, the model summary."""
from __future__ import annotations

import io

import numpy as np
import pytest

from cnnlab.datasets import load_image, load_mnist, to_float
from cnnlab.lab.explain import explain_dense, explain_pixel
from tests.server.conftest import decode, digit_png


def _x(pixels: dict, dtype=np.float32) -> np.ndarray:
    H, W = pixels["shape"][1:]
    return to_float(np.asarray(pixels["data"], np.uint8).reshape(1, H, W))[:, None].astype(dtype)  # (1, 1, H, W)


def test_predict_drawing_is_predicts_preprocessing_and_probabilities(client, model):
    png = digit_png()
    r = client.post("/api/predict", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    body = r.json()
    expected = load_image(io.BytesIO(png), image_size=(28, 28))  # what cnnlab predict does with the file
    assert np.array_equal(np.asarray(body["pixels"]["data"], np.uint8).reshape(28, 28), expected)
    assert expected.max() == 255  # a real drawing, not a blank input
    x = _x(body["pixels"])
    np.testing.assert_allclose(body["probabilities"], model.predict(x)[0], rtol=1e-6, atol=1e-7)
    assert body["predicted"] == int(np.argmax(model.predict(x)[0]))
    outputs = model.intermediate_outputs(x)
    assert [layer["index"] for layer in body["layers"]] == [0, 1, 2, 3, 4, 5]
    for layer in body["layers"]:
        maps = decode(layer["maps"])
        np.testing.assert_array_equal(maps, outputs[layer["index"]][0])
        assert layer["vmax"] == pytest.approx(float(np.abs(maps).max()) if layer["scale"] == "diverging" else maps.max())
        assert layer["legend"]
    np.testing.assert_allclose(body["logits"], outputs[-1][0], rtol=1e-6)


def test_predict_test_example_is_the_mnist_digit(client, model):
    r = client.post("/api/predict", json={"example": 3})
    assert r.status_code == 200
    _, (x_test, y_test) = load_mnist()
    body = r.json()
    assert body["label"] == int(y_test[3])
    assert np.array_equal(np.asarray(body["pixels"]["data"]).reshape(28, 28), x_test[3])


def _example_pixels(client):
    return client.post("/api/predict", json={"example": 0}).json()["pixels"]


def test_explain_conv_unit_matches_explain_pixel_and_the_map(client, model):
    pixels = _example_pixels(client)
    x = _x(pixels)
    r = client.post("/api/explain", json={"pixels": pixels["data"], "layer": 0, "channel": 5, "row": 12, "col": 9})
    assert r.status_code == 200, r.text
    e = r.json()
    ref = explain_pixel(model, x, 0, at=(12, 9), channel=5)
    assert e["pre_activation"] == pytest.approx(ref.pre_activation)
    assert e["value"] == pytest.approx(float(model.intermediate_outputs(x)[0][0, 5, 12, 9]), rel=1e-5, abs=1e-6)
    assert e["pre_activation"] == pytest.approx(e["value"], rel=1e-5, abs=1e-6)
    assert sum(e["channel_sums"]) + e["bias"] == pytest.approx(e["pre_activation"])
    np.testing.assert_array_equal(decode(e["grad_input"]), ref.grad_input[0])
    assert e["field"]["rows"] == [11, 13] and e["field"]["cols"] == [8, 10]
    np.testing.assert_allclose(decode(e["window"]["terms"]), ref.terms[0], rtol=1e-6)


def test_explain_pool_unit_follows_the_max(client, model):
    pixels = _example_pixels(client)
    x = _x(pixels)
    outputs = model.intermediate_outputs(x)
    pooled = outputs[5][0]  # (64, 7, 7)
    c, i, j = (int(v) for v in np.unravel_index(int(np.argmax(pooled)), pooled.shape))
    e = client.post("/api/explain", json={"pixels": pixels["data"], "layer": 5, "channel": c, "row": i, "col": j}).json()
    assert e["conv"]["layer"] == 3
    ci, cj = e["conv"]["at"]
    assert (ci // 2, cj // 2) == (i, j)
    assert e["activation"] == pytest.approx(e["value"])  # the pool passed this ReLU value on
    assert e["pool"]["is_max"] is True
    assert e["field"]["rows"][1] - e["field"]["rows"][0] + 1 <= 8


def test_explain_logit_matches_explain_dense(client, model):
    pixels = _example_pixels(client)
    x = _x(pixels)
    e = client.post("/api/explain", json={"pixels": pixels["data"], "layer": 9, "channel": 7}).json()
    ref = explain_dense(model, x, 9, 7)
    assert e["kind"] == "dense"
    assert e["pre_activation"] == pytest.approx(ref.pre_activation)
    assert e["pre_activation"] == pytest.approx(float(model.forward(x)[0, 7]), rel=1e-5)
    np.testing.assert_array_equal(decode(e["grad_input"]), ref.grad_input[0])


def test_model_page_numbers(client):
    body = client.get("/api/model").json()
    assert body["parameters"] == 421642
    assert [layer["output_shape"] for layer in body["layers"]][:3] == [[32, 28, 28], [32, 28, 28], [32, 14, 14]]
    assert [layer.get("receptive_field", [0])[0] for layer in body["layers"] if "receptive_field" in layer] == [3, 4, 8, 10]
    assert decode(body["layers"][3]["filters"]).shape == (64, 32, 3, 3)
    assert "Total params: 421,642" in body["summary"]
    assert body["examples"] == 10000


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and "cnnlab lab" in r.text
    for name in ("app.js", "draw.js", "why.js", "train.js", "model.js", "plots.js", "style.css", "index.html"):
        page = client.get(f"/static/{name}")
        assert page.status_code == 200
        assert "://" not in page.text, f"{name} names another site (no CDN, nothing fetched from elsewhere)"


@pytest.mark.parametrize("request_, status, words", [
    (dict(method="POST", url="/api/predict", content=b"hello", headers={"content-type": "text/plain"}), 415, "Content-Type"),
    (dict(method="POST", url="/api/predict", content=b"not an image", headers={"content-type": "image/png"}), 400, "not a readable image"),
    (dict(method="POST", url="/api/predict", content=b"", headers={"content-type": "image/png"}), 400, "empty"),
    (dict(method="POST", url="/api/predict", content=b"x" * (5 * 1024 * 1024), headers={"content-type": "image/png"}), 413, "too large"),
    (dict(method="POST", url="/api/predict", json={"example": -1}), 400, "example must be in"),
    (dict(method="POST", url="/api/predict", json={"example": 10000}), 400, "example must be in [0, 9999]"),
    (dict(method="POST", url="/api/predict", json={"example": "3"}), 400, "example must be an integer"),
    (dict(method="POST", url="/api/predict", json={"exemple": 3}), 400, "unknown field"),
    (dict(method="POST", url="/api/predict", content=b"{", headers={"content-type": "application/json"}), 400, "not valid JSON"),
    (dict(method="POST", url="/api/predict", json=[1, 2]), 400, "expected a JSON object"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 10, "layer": 0}), 400, "pixels must be a list of 784"),
    (dict(method="POST", url="/api/explain", json={"pixels": [300] * 784, "layer": 0}), 400, "pixels must be integers in [0, 255]"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 784, "layer": 10}), 400, "layer must be in [0, 9]"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 784, "layer": 0, "channel": 32}), 400, "32 channels"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 784, "layer": 6}), 400, "no feature map"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 784, "layer": 9, "channel": 10}), 400, "10 output units"),
    (dict(method="POST", url="/api/explain", json={"pixels": [0] * 784, "layer": True}), 400, "layer must be an integer"),
    (dict(method="POST", url="/api/train/start", json={"model": "simple_cnn", "data": "ox"}), 400, "choose data 'mnist'"),
    (dict(method="POST", url="/api/train/start", json={"model": "resnet"}), 400, "model must be one of"),
    (dict(method="POST", url="/api/train/start", json={"model": "ox_cnn", "lr": -1}), 400, "lr must be in"),
    (dict(method="POST", url="/api/train/start", json={"model": "ox_cnn", "epochs": 1e9}), 400, "epochs must be in"),
    (dict(method="POST", url="/api/train/start", json={"model": "simple_cnn", "limit": 10}), 400, "limit must be in [100, 60000]"),
    (dict(method="POST", url="/api/train/start", json={"model": "ox_cnn", "path": "/etc"}), 400, "unknown field(s) ['path']"),
    (dict(method="POST", url="/api/train/stop", json={}), 409, "no training run is running"),
    (dict(method="POST", url="/api/train/resume", json={}), 409, "nothing to resume"),
    (dict(method="POST", url="/api/train/use", json={}), 409, "no finished or stopped run"),
    (dict(method="GET", url="/api/nothing"), 404, "no such page"),
    (dict(method="GET", url="/api/predict"), 405, "not allowed"),
])
def test_bad_requests_get_a_json_error_naming_the_problem(client, request_, status, words):
    r = client.request(**request_)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_image_formats_outside_the_allow_list_are_refused(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (28, 28)).save(buf, "TIFF")
    r = client.post("/api/predict", content=buf.getvalue(), headers={"content-type": "image/tiff"})
    assert r.status_code == 415 and "TIFF" in r.json()["error"]


def test_huge_pixel_counts_are_refused_before_decoding(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (5000, 5000)).save(buf, "PNG")  # 5000 x 5000 = 25 M pixels in a few KB
    r = client.post("/api/predict", content=buf.getvalue(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and "5000x5000" in r.json()["error"]


@pytest.mark.parametrize("name", ["lenet5", "bn_cnn", "keras_tutorial_cnn"])
def test_every_map_layer_and_the_logits_of_other_zoo_models_can_be_explained(name, tmp_path):
    import warnings

    import cnnlab
    from cnnlab.server import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    model = cnnlab.models.zoo.get_model(name)
    client = TestClient(create_app(model, name, runs_dir=tmp_path, allowed_hosts={"testserver"}))
    body = client.post("/api/predict", json={"example": 1}).json()
    x = _x(body["pixels"])
    outputs = model.intermediate_outputs(x)
    for layer in body["layers"]:
        C, H, W = layer["maps"]["shape"]
        e = client.post("/api/explain", json={"pixels": body["pixels"]["data"], "layer": layer["index"],
                                              "channel": C - 1, "row": H // 2, "col": W // 2})
        assert e.status_code == 200, (layer["name"], e.text)
        e = e.json()
        assert e["value"] == pytest.approx(float(outputs[layer["index"]][0, C - 1, H // 2, W // 2]), rel=1e-5, abs=1e-6)
        assert e["pre_activation"] == pytest.approx(e["model_pre_activation"], rel=1e-5, abs=1e-5)
    last = len(model.layers) - 1
    e = client.post("/api/explain", json={"pixels": body["pixels"]["data"], "layer": last, "channel": 3}).json()
    assert e["pre_activation"] == pytest.approx(float(outputs[last][0, 3]), rel=1e-5, abs=1e-5)
