"""The playground endpoints give cnnlab's own numbers and the tutorials' known values."""
from __future__ import annotations

import numpy as np

from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward
from cnnlab.ops.reference import avgpool2d_forward_naive, conv2d_forward_naive

EDGE = [[10, 10, 10, 0, 0, 0, 0]] * 7  # the tutorials' 7x7 vertical edge: bright left, dark right
VERTICAL = [[1, 0, -1]] * 3
POOL4 = [[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]]  # the tutorials' 4x4 max-pool example


def test_conv_edge_gives_30_at_the_edge(client):
    r = client.post("/api/play/conv", json={"image": EDGE, "kernel": VERTICAL})
    assert r.status_code == 200, r.text
    body = r.json()
    assert np.array(body["output"])[0].tolist() == [0, 30, 30, 0, 0]
    assert body["formula"].endswith("= 5")
    assert len(body["steps"]) == 25


def test_conv_trace_equals_the_naive_op(client):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, (2, 6, 6)).astype(float)
    w = rng.integers(-2, 3, (2, 3, 3)).astype(float)
    body = client.post("/api/play/conv", json={"image": x.tolist(), "kernel": w.tolist(), "stride": 2,
                                               "padding": 1, "bias": 0.5}).json()
    expected, _ = conv2d_forward_naive(x[None], w[None], np.array([0.5]), (2, 2), (1, 1))
    np.testing.assert_allclose(body["output"], expected[0, 0])
    for step in body["steps"]:  # per-channel partial sums + bias make each output cell
        assert np.isclose(sum(step["partial_sums"]) + 0.5, step["value"])
        np.testing.assert_allclose(np.sum(step["products"], axis=(1, 2)), step["partial_sums"])
    assert np.array(body["padded"]).shape == (2, 8, 8)


def test_pool_tutorial_example_and_its_routing(client):
    body = client.post("/api/play/pool", json={"image": POOL4, "kind": "max", "size": 2,
                                               "upstream": [[2, 5], [3, 7]]}).json()
    assert body["output"] == [[6, 8], [9, 11]]  # the tutorial prints [[3,4],[9,11]]: an erratum
    x = np.array(POOL4, float)[None, None]
    out, cache = maxpool2d_forward(x, 2)
    dx = maxpool2d_backward(np.array([[[[2, 5], [3, 7]]]], float), cache)
    np.testing.assert_array_equal(body["grad_input"], dx[0, 0])
    assert [w["chosen"] for w in body["windows"]] == [[1, 1], [1, 3], [2, 0], [3, 2]]
    assert body["grad_input"] == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]  # corrected routing


def test_pool_ties_take_the_first_maximum_and_avg_matches(client):
    body = client.post("/api/play/pool", json={"image": [[5, 5], [5, 5]], "kind": "max", "size": 2}).json()
    assert body["windows"][0]["chosen"] == [0, 0] and body["windows"][0]["ties"] == 4
    assert body["grad_input"] == [[1, 0], [0, 0]]
    x = np.arange(25, dtype=float).reshape(5, 5)
    avg = client.post("/api/play/pool", json={"image": x.tolist(), "kind": "avg", "size": 3, "stride": 1}).json()
    np.testing.assert_allclose(avg["output"], avgpool2d_forward_naive(x[None, None], 3, 1)[0][0, 0])


def test_bad_requests_get_json_naming_the_problem(client):
    cases = [("/api/play/conv", {"image": EDGE, "kernel": VERTICAL, "stride": 9}, "stride"),
             ("/api/play/conv", {"image": [[1, 2], [3]], "kernel": VERTICAL}, "image"),
             ("/api/play/conv", {"image": EDGE, "kernel": [[[1]], [[1]]]}, "channel"),
             ("/api/play/conv", {"image": EDGE, "kernel": VERTICAL, "colour": 1}, "unknown"),
             ("/api/play/pool", {"image": POOL4, "kind": "median"}, "kind"),
             ("/api/play/pool", {"image": POOL4, "upstream": [[1]]}, "upstream")]
    for path, payload, word in cases:
        r = client.post(path, json=payload)
        assert 400 <= r.status_code < 500, (payload, r.text)
        assert word in r.json()["error"], r.json()


def test_parameter_counts_match_the_tutorials(client):
    from cnnlab.explain import conv_parameters, dense_parameters

    body = client.post("/api/play/params", json={"channels": 3, "height": 224, "width": 224, "hidden": 1000,
                                                 "kernel": 3, "filters": 64}).json()
    assert body["dense"] == 150_529_000 and body["conv"] == 1_792
    big = client.post("/api/play/params", json={"channels": 3, "height": 64, "width": 64, "hidden": 512,
                                                "kernel": 5, "filters": 64}).json()
    assert (big["dense"], big["conv"]) == (6_291_968, 4_864)
    assert big["dense"] == dense_parameters(3 * 64 * 64, 512) and big["conv"] == conv_parameters(3, 64, 5)
    assert [p["dense"] for p in body["presets"]][:2] == [78_500, 100_480]
    r = client.post("/api/play/params", json={"kernel": 0})
    assert r.status_code == 400 and "kernel" in r.json()["error"]
