"""POST /api/play/matrix: the convolution matrix, its weight sharing, and M @ x = conv(x)."""
from __future__ import annotations

import numpy as np

from cnnlab.ops.reference import conv2d_forward_naive


def test_the_16x36_matrix_of_a_3x3_kernel_on_6x6(client):
    rng = np.random.default_rng(1)
    x = rng.integers(-3, 4, (6, 6)).astype(float)
    w = rng.integers(-5, 6, (3, 3)).astype(float)
    w[w == 0] = 1  # nine nonzero weights
    body = client.post("/api/play/matrix", json={"image": x.tolist(), "kernel": w.tolist()}).json()
    M = np.array(body["matrix"])
    assert M.shape == (16, 36)
    assert body["counts"] == {"entries": 576, "slots": 144, "empty": 432, "nonzero": 144, "distinct_weights": 9,
                              "rows": 16, "cols": 36, "per_row": [9] * 16}
    for r in range(16):  # built independently: row r is the kernel placed at window (r // 4, r % 4)
        i, j = divmod(r, 4)
        row = np.zeros((6, 6))
        row[i:i + 3, j:j + 3] = w
        np.testing.assert_array_equal(M[r], row.ravel())
        assert body["windows"][r]["out"] == [i, j]
        assert body["windows"][r]["cells"] == [[a, b] for a in range(i, i + 3) for b in range(j, j + 3)]
    index = np.array(body["index"])
    assert sorted(set(index[index >= 0].tolist())) == list(range(9))  # nine shared weights
    expected, _ = conv2d_forward_naive(x[None, None], w[None, None], None)
    np.testing.assert_allclose(body["conv"], expected[0, 0])
    np.testing.assert_allclose(body["product"], expected.ravel())
    assert body["max_abs_difference"] < 1e-12


def test_stride_and_padding(client):
    x = np.arange(36, dtype=float).reshape(6, 6)
    body = client.post("/api/play/matrix", json={"image": x.tolist(), "stride": 2, "padding": 1}).json()
    expected, _ = conv2d_forward_naive(x[None, None], np.arange(1.0, 10.0).reshape(1, 1, 3, 3), None, (2, 2), (1, 1))
    assert np.array(body["matrix"]).shape == (9, 36)
    np.testing.assert_allclose(body["product"], expected.ravel())
    assert body["counts"]["per_row"][0] == 4  # the corner window covers 2x2 real pixels, the rest is padding


def test_bad_requests_name_what_was_expected(client):
    cases = [({"image": np.zeros((9, 9)).tolist()}, "8x8"), ({"kernel": np.ones((7, 7)).tolist()}, "kernel"),
             ({"image": [[1, 2], [3, 4]]}, "larger than the padded input"), ({"stride": 3}, "stride"),
             ({"padding": 2}, "padding"), ({"kernel": [[1, "a"]]}, "kernel")]
    for payload, words in cases:
        r = client.post("/api/play/matrix", json=payload)
        assert 400 <= r.status_code < 500, (payload, r.text)
        assert words in r.json()["error"], r.json()
