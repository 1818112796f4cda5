"""MaxPool2d, AvgPool2d, GlobalAvgPool2d layers: shapes, gradients, PyTorch oracle, errors, config."""
import json

import numpy as np
import pytest
import torch

from cnnlab.engines import runtime as backend
from cnnlab.layers import LAYER_CLASSES, AvgPool2d, GlobalAvgPool2d, MaxPool2d
from cnnlab.testing import check_layer_gradients, rel_error


# Every test in this file runs under each available backend (cnnlab.engines.runtime): the NumPy code and
# the Numba kernels must both match the reference loops and PyTorch.
@pytest.fixture(autouse=True, params=[b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def engine(request):
    with backend.backend(request.param):
        yield request.param


def _distinct(shape, seed=0, dtype=np.float64):
    """All values distinct and 1 apart (no ties, no kinks for central differences)."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n).reshape(shape) - n / 2).astype(dtype)


def test_registered_and_parameter_free():
    for cls in (MaxPool2d, AvgPool2d, GlobalAvgPool2d):
        assert LAYER_CLASSES[cls.__name__] is cls
    assert MaxPool2d(2).num_parameters() == 0 and MaxPool2d(2).dtype is None


def test_stride_defaults_to_kernel_and_output_shapes():
    pool = MaxPool2d(2)
    assert pool.stride == (2, 2) and pool.padding == (0, 0)
    assert pool.output_shape((32, 28, 28)) == (32, 14, 14)
    assert MaxPool2d(2).output_shape((64, 14, 14)) == (64, 7, 7)
    assert MaxPool2d(2).output_shape((1, 7, 7)) == (1, 3, 3)  # floor
    assert AvgPool2d(3, stride=2, padding=1).output_shape((3, 9, 8)) == (3, 5, 4)
    assert MaxPool2d((2, 3), stride=(1, 2)).output_shape((2, 5, 7)) == (2, 4, 3)
    assert GlobalAvgPool2d().output_shape((64, 7, 7)) == (64,)


def test_maxpool_worked_example_through_the_layer():
    x = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float32)[None, None]
    pool = MaxPool2d(2)
    out = pool(x, training=True)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [9, 11]])
    dx = pool.backward(np.array([[[[2, 5], [3, 7]]]], dtype=np.float32))
    assert {tuple(ij) for ij in np.argwhere(dx[0, 0] != 0)} == {(1, 1), (1, 3), (2, 0), (3, 2)}
    assert [dx[0, 0, 1, 1], dx[0, 0, 1, 3], dx[0, 0, 2, 0], dx[0, 0, 3, 2]] == [2, 5, 3, 7]


# ----- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("make, shape", [
    (lambda: MaxPool2d(2), (2, 3, 6, 4)),
    (lambda: MaxPool2d(3, stride=2, padding=1), (1, 2, 7, 5)),  # overlapping, padded, batch of 1
    (lambda: MaxPool2d((2, 3), stride=(1, 2)), (2, 1, 5, 7)),
    (lambda: AvgPool2d(2), (2, 2, 4, 6)),
    (lambda: AvgPool2d(3, stride=1, padding=1), (1, 2, 5, 5)),
    (lambda: GlobalAvgPool2d(), (2, 3, 5, 4)),
])
def test_gradients_match_central_differences(make, shape):
    errors = check_layer_gradients(make(), _distinct(shape, seed=1))
    assert errors["x"] <= 1e-6, errors


# ----- PyTorch oracle --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-6), (np.float64, 1e-12)])
@pytest.mark.parametrize("ours, theirs", [
    (lambda: MaxPool2d(2), lambda: torch.nn.MaxPool2d(2)),
    (lambda: MaxPool2d(3, stride=2, padding=1), lambda: torch.nn.MaxPool2d(3, stride=2, padding=1)),
    (lambda: AvgPool2d(2), lambda: torch.nn.AvgPool2d(2)),
    (lambda: AvgPool2d(3, stride=2, padding=1), lambda: torch.nn.AvgPool2d(3, stride=2, padding=1)),
    (lambda: GlobalAvgPool2d(), lambda: torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())),
])
def test_matches_pytorch_modules(dtype, tol, ours, theirs):
    x = _distinct((2, 3, 8, 7), seed=2, dtype=dtype) / 4
    layer, module = ours(), theirs()
    tx = torch.tensor(x, requires_grad=True)
    t_out = module(tx)
    out = layer(x, training=True)
    dout = np.random.default_rng(3).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.tensor(dout))
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == dtype
    assert rel_error(out, t_out.detach().numpy()) <= tol
    assert rel_error(dx, tx.grad.numpy()) <= tol


def test_maxpool_ties_on_mnist_like_zeros_match_pytorch():
    x = np.zeros((2, 4, 6, 6), dtype=np.float32)
    x[:, :, 2:4, 1:3] = 1.0  # one bright blob; most windows are all-zero ties
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.MaxPool2d(2)(tx).backward(torch.ones(2, 4, 3, 3))
    pool = MaxPool2d(2)
    pool(x, training=True)
    np.testing.assert_array_equal(pool.backward(np.ones((2, 4, 3, 3), dtype=np.float32)), tx.grad.numpy())


@pytest.mark.parametrize("impl", ["fast", "im2col", "naive"])
def test_impls_agree_through_the_layer(impl):
    x = np.random.default_rng(4).integers(0, 4, (2, 2, 6, 6)).astype(np.float64)  # ties included
    want = MaxPool2d(3, stride=2, padding=1)
    got = MaxPool2d(3, stride=2, padding=1, impl=impl)
    np.testing.assert_array_equal(got(x, training=True), want(x, training=True))
    dout = np.arange(18.0).reshape(2, 1, 3, 3).repeat(2, axis=1)
    np.testing.assert_array_equal(got.backward(dout), want.backward(dout))


# ----- dtypes, modes ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [lambda: MaxPool2d(2), lambda: AvgPool2d(2), lambda: GlobalAvgPool2d(),
                                  lambda: MaxPool2d(3, 1, 1), lambda: AvgPool2d(3, 2, 1)])
def test_dtype_is_preserved(dtype, make):
    layer = make()
    x = _distinct((2, 3, 6, 6), dtype=dtype)
    out = layer(x, training=True)
    assert out.dtype == layer.backward(np.ones_like(out)).dtype == dtype


def test_cache_only_when_training_and_backward_before_forward_errors():
    for layer in (MaxPool2d(2), AvgPool2d(2), GlobalAvgPool2d()):
        with pytest.raises(RuntimeError, match=r"backward\(\) called before a forward pass"):
            layer.backward(np.ones((1, 1, 2, 2)))
        layer(np.ones((1, 1, 4, 4)))
        assert layer._cache is None
        layer(np.ones((1, 1, 4, 4)), requires_grad=True)
        assert layer._cache is not None


# ----- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_constructor_errors(cls):
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size, 1 for kernel_size=3; received padding=2"):
        cls(3, padding=2)
    with pytest.raises(ValueError, match="kernel_size must be >= 1; received 0"):
        cls(0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cls(2, stride=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        cls(2, padding=-1)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints"):
        cls("2")
    with pytest.raises(ValueError, match="unknown pooling impl 'fastest'"):
        cls(2, impl="fastest")


@pytest.mark.parametrize("layer", [MaxPool2d(3), AvgPool2d(3), GlobalAvgPool2d()])
def test_forward_errors(layer):
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\).*x\[:, None\]"):
        layer(np.ones((2, 8, 8)))
    with pytest.raises(TypeError, match="floating-point array"):
        layer(np.ones((2, 1, 8, 8), dtype=np.int64))
    if not isinstance(layer, GlobalAvgPool2d):
        with pytest.raises(ValueError, match=r"kernel_size \(3, 3\) is larger than the padded input \(2, 8\)"):
            layer(np.ones((1, 1, 2, 8)))
        with pytest.raises(ValueError, match=r"per-sample input of shape \(C, H, W\)"):
            layer.output_shape((8, 8))


# ----- config and repr ----------------------------------------------------------------------------
@pytest.mark.parametrize("layer, text", [
    (MaxPool2d(2), "MaxPool2d(kernel_size=2)"),
    (MaxPool2d(2, stride=2), "MaxPool2d(kernel_size=2)"),
    (MaxPool2d(3, stride=2, padding=1), "MaxPool2d(kernel_size=3, stride=2, padding=1)"),
    (AvgPool2d((2, 3), stride=(1, 2), impl="naive"), "AvgPool2d(kernel_size=(2, 3), stride=(1, 2), impl='naive')"),
    (GlobalAvgPool2d(), "GlobalAvgPool2d()"),
])
def test_repr_and_config_round_trip(layer, text):
    assert repr(layer) == text
    config = json.loads(json.dumps(layer.get_config()))
    clone = type(layer)(**config)
    assert repr(clone) == text and clone.get_config() == layer.get_config()
    assert clone.output_shape((3, 12, 12)) == layer.output_shape((3, 12, 12))
