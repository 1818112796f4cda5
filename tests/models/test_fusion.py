"""cnnlab.models.fusion: the model's plan runs Conv2d -> ReLU -> MaxPool2d as one step, bit for bit."""
import numpy as np
import pytest

from cnnlab.engines import runtime as backend
from cnnlab.layers import Conv2d
from cnnlab.models.fusion import ConvReLUMaxPool, fuse_layers


@pytest.fixture(autouse=True, params=[b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def engine(request):
    with backend.backend(request.param):
        yield request.param


def test_fused_block_is_bitwise_the_three_layers():
    from cnnlab.layers import MaxPool2d, ReLU

    conv, relu, pool = Conv2d(3, 4, 3, padding=1, rng=5), ReLU(), MaxPool2d(2)
    block = ConvReLUMaxPool(Conv2d(3, 4, 3, padding=1, rng=5), ReLU(), MaxPool2d(2))
    x = np.random.default_rng(6).standard_normal((2, 3, 6, 8)).astype(np.float32)
    out = pool(relu(conv(x, training=True), training=True), training=True)
    np.testing.assert_array_equal(block.forward(x, training=True), out)
    dout = np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)
    dx = conv.backward(relu.backward(pool.backward(dout)))
    np.testing.assert_array_equal(block.backward(dout), dx)
    np.testing.assert_array_equal(block.conv.weight.grad, conv.weight.grad)
    np.testing.assert_array_equal(block.conv.bias.grad, conv.bias.grad)
    assert block.backward(dout, need_dx=False) is None
    with pytest.raises(TypeError, match="float32"):
        block.forward(x.astype(np.float64))
    block.forward(x)  # inference keeps no cache
    with pytest.raises(RuntimeError, match="before forward"):
        block.backward(dout)


def test_fuse_layers_groups_only_triples_that_tile():
    from cnnlab.layers import AvgPool2d, Dense, Flatten, MaxPool2d, ReLU

    def kinds(layers, shape):
        return [type(s).__name__ for s in fuse_layers(layers, shape)]

    c = lambda **kw: Conv2d(1, 2, 3, padding=1, **kw)  # noqa: E731
    assert kinds([c(), ReLU(), MaxPool2d(2), Flatten(), Dense(32, 2)], (1, 8, 8)) == \
        ["ConvReLUMaxPool", "Flatten", "Dense"]
    assert kinds([c(), ReLU(), MaxPool2d(2)], (1, 7, 7)) == ["Conv2d", "ReLU", "MaxPool2d"]  # 7 % 2
    assert kinds([c(), ReLU(), MaxPool2d(2, stride=1)], (1, 8, 8)) == ["Conv2d", "ReLU", "MaxPool2d"]
    assert kinds([c(), ReLU(), AvgPool2d(2)], (1, 8, 8)) == ["Conv2d", "ReLU", "AvgPool2d"]
    assert kinds([c(impl="im2col"), ReLU(), MaxPool2d(2)], (1, 8, 8)) == ["Conv2d", "ReLU", "MaxPool2d"]
    assert kinds([c(), MaxPool2d(2), ReLU()], (1, 8, 8)) == ["Conv2d", "MaxPool2d", "ReLU"]
    steps = fuse_layers([c(), ReLU(), MaxPool2d(2), Conv2d(2, 2, 3, padding=1), ReLU(), MaxPool2d(2)], (1, 8, 8))
    assert [type(s) for s in steps] == [ConvReLUMaxPool, ConvReLUMaxPool]
