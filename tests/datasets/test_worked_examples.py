"""The tutorials' worked examples give the tutorials' numbers through cnnlab's ops."""
from __future__ import annotations

import numpy as np

from cnnlab.datasets import worked_examples as ex
from cnnlab.ops.conv import conv2d_forward
from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward


def test_the_7x7_edge_gives_30_where_the_window_straddles_the_edge():
    w = np.array([[[[1, 0, -1]] * 3]], dtype=np.float64)
    out, _ = conv2d_forward(ex.edge_image()[None, None], w, np.zeros(1))
    assert out.shape == (1, 1, 5, 5)
    assert (out[0, 0] == [0, 30, 30, 0, 0]).all()


def test_the_4x4_max_pool_and_its_corrected_routing():
    out, cache = maxpool2d_forward(ex.pool_example()[None, None], 2, 2)
    assert out[0, 0].tolist() == [list(r) for r in ex.POOL_EXAMPLE_ERRATUM["correct"]]
    dx = maxpool2d_backward(ex.pool_upstream()[None, None], cache)[0, 0]
    assert dx.tolist() == [[0, 0, 0, 0], [0, 2, 0, 5], [3, 0, 0, 0], [0, 0, 7, 0]]


def test_the_letters_and_the_tutorial_filter():
    o, x = ex.letter_o(), ex.letter_x()
    assert o.sum() == 16 and x.sum() == 12 and (x == x.T).all() and (o == o.T).all()
    w = np.array(ex.OX_FILTER, dtype=np.float64)[None, None]
    out, _ = conv2d_forward(o[None, None], w, np.array([ex.OX_BIAS]))
    assert out.shape == (1, 1, 4, 4) and out[0, 0, 0, 0] == 4 - 2  # the O has 4 ones on the ring around (1, 1)
    assert ex.checkerboard().sum() == 32 and ex.square().sum() == 16
    assert ex.edge_image() is not ex.edge_image()  # fresh arrays: callers may edit them
