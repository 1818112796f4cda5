"""The Pooling page's endpoints: the tutorial's example with its erratum, per-window routes, ties."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets import worked_examples as we
from cnnlab.ops.reference import avgpool2d_backward_naive, avgpool2d_forward_naive


def test_presets_hold_the_tutorial_example_and_its_erratum(client):
    r = client.post("/api/play/pool-presets", json={})
    assert r.status_code == 200, r.text
    tutorial = r.json()["tutorial"]
    np.testing.assert_array_equal(tutorial["image"], we.pool_example())
    np.testing.assert_array_equal(tutorial["upstream"], we.pool_upstream())
    assert tutorial["erratum"] == {"printed": [[3, 4], [9, 11]], "correct": [[6, 8], [9, 11]]}
    r = client.post("/api/play/pool-presets", json={"x": 1})
    assert r.status_code == 400 and "unknown field" in r.json()["error"]


def test_routes_and_running_gradients_of_the_tutorial_example(client):
    body = client.post("/api/play/pool", json={"image": we.pool_example().tolist(), "kind": "max", "size": 2,
                                               "upstream": we.pool_upstream().tolist()}).json()
    assert [w["routes"] for w in body["windows"]] == [[[1, 1, 2]], [[1, 3, 5]], [[2, 0, 3]], [[3, 2, 7]]]
    assert [w["upstream"] for w in body["windows"]] == [2, 5, 3, 7]
    assert body["grad_steps"][0] == [[0, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert body["grad_steps"][-1] == body["grad_input"] == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]


def test_ties_route_to_the_first_maximum(client):
    ties = client.post("/api/play/pool-presets", json={}).json()["ties"]
    body = client.post("/api/play/pool", json={"image": ties["image"], "upstream": ties["upstream"]}).json()
    assert [w["ties"] for w in body["windows"]] == [4, 2, 1, 2]
    assert body["windows"][1]["tied"] == [[1, 2], [1, 3]]
    assert [w["chosen"] for w in body["windows"]] == [[0, 0], [1, 2], [3, 0], [2, 2]]
    assert body["grad_input"][0][0] == 2 and body["grad_input"][1][1] == 0  # first in row-major order wins


def test_overlapping_average_windows_add_up(client):
    x = np.arange(16, dtype=float).reshape(4, 4)
    up = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=float)
    body = client.post("/api/play/pool", json={"image": x.tolist(), "kind": "avg", "size": 2, "stride": 1,
                                               "upstream": up.tolist()}).json()
    _, cache = avgpool2d_forward_naive(x[None, None], 2, 1)
    expected = avgpool2d_backward_naive(up[None, None], cache)[0, 0]
    np.testing.assert_allclose(body["grad_input"], expected)
    np.testing.assert_allclose(body["grad_steps"][-1], expected)
    assert body["windows"][0]["routes"] == [[0, 0, 0.25], [0, 1, 0.25], [1, 0, 0.25], [1, 1, 0.25]]
    big = client.post("/api/play/pool", json={"image": np.zeros((32, 32)).tolist(), "size": 2, "stride": 1}).json()
    assert "grad_steps" not in big  # 961 windows x 1024 cells: too much to send
