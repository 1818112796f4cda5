"""POST /api/play/equivariance: conv(shift x) vs shift(conv x), and pooling, against NumPy."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import edge_image


def numpy_conv_same(image, kernel):
    padded = np.pad(image, 1)
    h, w = image.shape
    return np.array([[np.sum(padded[i:i + 3, j:j + 3] * kernel) for j in range(w)] for i in range(h)])


def shift(a, dy, dx):
    """Move a 2-D array by (dy, dx), either sign, filling with zeros (np.roll, then blank what wrapped)."""
    out = np.roll(a, (dy, dx), axis=(0, 1))
    if dy:
        out[(slice(0, dy) if dy > 0 else slice(dy, None)), :] = 0
    if dx:
        out[:, (slice(0, dx) if dx > 0 else slice(dx, None))] = 0
    return out


def pool(a):
    h, w = a.shape
    return np.maximum(a, 0).reshape(h // 2, 2, w // 2, 2).max(axis=(1, 3))


def test_difference_only_at_the_border(client):
    body = client.post("/api/play/equivariance", json={"preset": "edge", "shift": 5, "kernel": "vertical_edge"}).json()
    image = np.kron(edge_image() / 10, np.ones((4, 4)))
    kernel = np.array([[1, 0, -1]] * 3, float)
    np.testing.assert_array_equal(body["image"], image)
    conv = numpy_conv_same(image, kernel)
    conv_of_shifted = numpy_conv_same(shift(image, 0, 5), kernel)
    np.testing.assert_allclose(body["conv"], conv)
    np.testing.assert_allclose(body["conv_of_shifted"], conv_of_shifted)
    np.testing.assert_allclose(body["shift_of_conv"], shift(conv, 0, 5))
    diff = conv_of_shifted - shift(conv, 0, 5)
    np.testing.assert_allclose(body["difference"], diff)
    assert body["nonzero_cols"] == [4] and body["max_abs_difference"] == np.abs(diff).max() == 3
    assert body["max_abs_difference_outside_band"] == 0
    np.testing.assert_allclose(body["pooled"], pool(conv))
    np.testing.assert_allclose(body["pooled_of_shifted"], pool(conv_of_shifted))


def test_digit_and_diagonal_shift_commute_away_from_the_band(client):
    for kernel in ("sobel_x", "laplacian", "diagonal_edge_main"):
        for s in (0, 3, 8):
            body = client.post("/api/play/equivariance", json={"preset": "digit", "digit": 7, "shift": s,
                                                               "direction": "diagonal", "kernel": kernel}).json()
            assert body["shift"] == [s, s]
            diff = np.array(body["conv_of_shifted"]) - shift(np.array(body["conv"]), s, s)
            np.testing.assert_allclose(body["difference"], diff)
            assert np.all(np.abs(diff)[~np.array(body["band"])] < 1e-12)
            assert body["max_abs_difference_outside_band"] < 1e-12


def test_pooling_moves_with_even_shifts_only(client):
    even = client.post("/api/play/equivariance", json={"preset": "O", "shift": 4}).json()
    odd = client.post("/api/play/equivariance", json={"preset": "O", "shift": 3}).json()
    assert even["shift_is_multiple_of_stride"] and not odd["shift_is_multiple_of_stride"]
    assert even["pooled_max_abs_difference_inside"] == 0 and even["pooled_shift"] == [0, 2]
    assert odd["pooled_max_abs_difference_inside"] > 0
    np.testing.assert_allclose(even["pooled_of_shifted"], shift(np.array(even["pooled"]), 0, 2))


def test_bad_requests_name_what_was_expected(client):
    cases = [({"shift": 9}, "[0, 8]"), ({"preset": "cat"}, "preset"), ({"kernel": "emboss"}, "kernel"),
             ({"digit": 100}, "digit"), ({"direction": "upward"}, "direction"), ({"image": [[1]]}, "unknown")]
    for payload, words in cases:
        r = client.post("/api/play/equivariance", json=payload)
        assert 400 <= r.status_code < 500, (payload, r.text)
        assert words in r.json()["error"], r.json()


def test_left_and_up_shifts_commute_away_from_their_band(client):
    for direction, (sy, sx) in (("left", (0, -1)), ("up", (-1, 0))):
        for s in (3, 8):
            body = client.post("/api/play/equivariance", json={"preset": "digit", "digit": 7, "shift": s,
                                                               "direction": direction, "kernel": "sobel_x"}).json()
            assert body["shift"] == [sy * s, sx * s]
            assert body["shift_words"] == f"{s} px {direction}"
            diff = np.array(body["conv_of_shifted"]) - shift(np.array(body["conv"]), sy * s, sx * s)
            band = np.array(body["band"])
            assert np.all(np.abs(diff)[~band] < 1e-12) and body["max_abs_difference_outside_band"] < 1e-12
            assert band.sum() < band.size / 2  # the band is a border, not the whole map
    even = client.post("/api/play/equivariance", json={"preset": "O", "shift": 4, "direction": "left"}).json()
    assert even["pooled_shift"] == [0, -2] and even["pooled_shift_words"] == "2 cells left"
    assert even["pooled_max_abs_difference_inside"] == 0
    odd = client.post("/api/play/equivariance", json={"preset": "O", "shift": 5, "direction": "up"}).json()
    assert odd["pooled_shift"] == [-2, 0] and not odd["shift_is_multiple_of_stride"]
