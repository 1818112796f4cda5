"""POST /api/play/ox: the tutorial's O-versus-X network, checked against NumPy and cnnlab's ops."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import letter_o, letter_x
from cnnlab.layers.dense import Dense
from cnnlab.training.losses import CrossEntropyLoss
from cnnlab.training.optim import SGD

RING = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], float)


def numpy_conv(image, kernel, bias):
    """Valid cross-correlation by explicit windows (independent of cnnlab's im2col)."""
    n = image.shape[0] - kernel.shape[0] + 1
    return np.array([[np.sum(image[i:i + 3, j:j + 3] * kernel) + bias for j in range(n)] for i in range(n)])


def numpy_flat(image, kernel, bias):
    relu = np.maximum(numpy_conv(image, kernel, bias), 0)
    return relu.reshape(2, 2, 2, 2).max(axis=(1, 3)).ravel()  # 2x2 max pool, stride 2, then flatten


def test_the_tutorials_numbers(client):
    body = client.post("/api/play/ox", json={}).json()
    assert body["letters"]["O"]["conv"] == [[2, 1, 1, 2], [1, -2, -2, 1], [1, -2, -2, 1], [2, 1, 1, 2]]
    np.testing.assert_array_equal(body["letters"]["X"]["conv"], numpy_conv(letter_x(), RING, -2))
    assert body["letters"]["O"]["relu"] == [[2, 1, 1, 2], [1, 0, 0, 1], [1, 0, 0, 1], [2, 1, 1, 2]]
    # with the ring filter both letters flatten to [2, 2, 2, 2]: the dense layer cannot separate them
    assert body["letters"]["O"]["flat"] == body["letters"]["X"]["flat"] == [2, 2, 2, 2]
    assert body["flat_differ"] is False
    assert body["letters"]["O"]["probabilities"] == [0.5, 0.5]


def test_an_edited_filter_separates_the_letters_and_the_dense_fit_is_cnnlabs(client):
    kernel = RING.copy()
    kernel[1, 1] = 3
    body = client.post("/api/play/ox", json={"filter": kernel.tolist(), "bias": -2, "steps": 40}).json()
    flat_o, flat_x = numpy_flat(letter_o(), kernel, -2), numpy_flat(letter_x(), kernel, -2)
    assert body["letters"]["O"]["flat"] == flat_o.tolist() and body["letters"]["X"]["flat"] == flat_x.tolist()
    assert body["flat_differ"] is True
    layer = Dense(4, 2, weight_init="zeros", dtype=np.float64)  # the same fit, done here step by step
    loss_fn, opt = CrossEntropyLoss(), SGD(layer.parameters(), lr=body["dense"]["learning_rate"])
    feats = np.stack([flat_o, flat_x])
    for _ in range(40):
        loss_fn.forward(layer.forward(feats, training=True), np.array([0, 1]))
        opt.zero_grad()
        layer.backward(loss_fn.backward())
        opt.step()
    np.testing.assert_allclose(body["dense"]["weight"], layer.weight.data)
    scores = feats @ layer.weight.data + layer.bias.data
    np.testing.assert_allclose(body["letters"]["O"]["scores"], scores[0])
    probs = np.exp(scores[1]) / np.exp(scores[1]).sum()
    np.testing.assert_allclose(body["letters"]["X"]["probabilities"], probs)
    assert probs[1] > 0.5 and body["dense"]["loss_end"] < body["dense"]["loss_start"]


def test_shifted_letters(client):
    kernel = [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    for mode in ("zero", "roll"):
        body = client.post("/api/play/ox", json={"filter": kernel, "shift": [1, -1], "shift_mode": mode}).json()
        if mode == "roll":
            moved = np.roll(letter_x(), (1, -1), axis=(0, 1))
        else:
            moved = np.zeros((6, 6))
            moved[1:, :-1] = letter_x()[:-1, 1:]
        assert body["letters"]["X"]["input"] == moved.tolist()
        assert body["letters"]["X"]["flat"] == numpy_flat(moved, np.array(kernel, float), -2).tolist()
        assert body["unshifted_flat"]["X"] == numpy_flat(letter_x(), np.array(kernel, float), -2).tolist()


def test_bad_requests_name_what_was_expected(client):
    cases = [({"filter": [[1, 2], [3, 4]]}, "3x3"), ({"filter": [[99] * 3] * 3}, "[-10, 10]"),
             ({"shift": [2, 0]}, "-1..1"), ({"shift_mode": "wrap"}, "shift_mode"), ({"steps": 5000}, "steps"),
             ({"bias": "a"}, "bias"), ({"filters": RING.tolist()}, "unknown")]
    for payload, words in cases:
        r = client.post("/api/play/ox", json=payload)
        assert 400 <= r.status_code < 500, (payload, r.text)
        assert words in r.json()["error"], r.json()
