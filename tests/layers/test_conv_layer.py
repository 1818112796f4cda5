"""Conv2d layer: parameters, initialization, gradients, PyTorch oracle, errors, config."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.engines import runtime as backend
from cnnlab.layers import LAYER_CLASSES, Conv2d
from cnnlab.testing import check_layer_gradients, rel_error


# Every test in this file runs under each available backend (cnnlab.engines.runtime): the NumPy code and
# the Numba kernels must both match the reference loops and PyTorch.
@pytest.fixture(autouse=True, params=[b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def engine(request):
    with backend.backend(request.param):
        yield request.param


def test_parameter_counts_and_shapes():
    assert Conv2d(3, 64, 3).num_parameters() == 1_792  # 64 * 3*3*3 + 64
    assert Conv2d(1, 32, 3, padding=1).num_parameters() == 320
    assert Conv2d(32, 64, 3, bias=False).num_parameters() == 18_432
    layer = Conv2d(3, 8, (3, 5), rng=0)
    assert layer.weight.shape == (8, 3, 3, 5) and layer.bias.shape == (8,)
    assert layer.weight.data.dtype == layer.bias.data.dtype == np.float32
    assert Conv2d(3, 8, 3, bias=False).bias is None
    assert LAYER_CLASSES["Conv2d"] is Conv2d


def test_he_normal_init_has_std_sqrt_2_over_fan_in_and_zero_bias():
    layer = Conv2d(64, 128, 3, rng=0)  # fan_in = 576, 73,728 samples
    w = layer.weight.data
    assert abs(w.std() / math.sqrt(2 / 576) - 1) < 0.02
    assert abs(w.mean()) < 0.01 * w.std()
    np.testing.assert_array_equal(layer.bias.data, 0)


def test_glorot_uniform_init_stays_inside_its_limit():
    layer = Conv2d(16, 32, 3, weight_init="glorot_uniform", rng=0)
    limit = math.sqrt(6 / (16 * 9 + 32 * 9))
    w = layer.weight.data
    assert np.abs(w).max() <= limit and np.abs(w).max() > 0.95 * limit
    assert abs(w.std() / (limit / math.sqrt(3)) - 1) < 0.05


def test_same_seed_same_weights_and_reset_parameters():
    a, b = Conv2d(3, 4, 3, rng=7), Conv2d(3, 4, 3, rng=7)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    assert not np.array_equal(a.weight.data, Conv2d(3, 4, 3, rng=8).weight.data)
    a.reset_parameters(8)
    np.testing.assert_array_equal(a.weight.data, Conv2d(3, 4, 3, rng=8).weight.data)


def test_padding_same_and_valid():
    x = np.ones((2, 3, 9, 7), dtype=np.float32)
    assert Conv2d(3, 4, 5, padding="same")(x).shape == (2, 4, 9, 7)
    assert Conv2d(3, 4, (3, 5), padding="same").padding == (1, 2)
    assert Conv2d(3, 4, 3, padding="valid")(x).shape == (2, 4, 7, 5)
    assert Conv2d(3, 4, 3, stride=2, padding=1).output_shape((3, 9, 7)) == (4, 5, 4)


# ----- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("C, F, shape, kernel, stride, padding", [
    (3, 2, (2, 5, 7), 3, 1, 1),  # odd, non-square
    (2, 3, (1, 7, 6), 3, 2, 1),  # stride 2 with padding, batch of 1
    (2, 2, (2, 6, 5), (2, 3), (1, 2), (0, 1)),  # non-square kernel
    (1, 2, (1, 5, 5), 5, 1, "same"),
])
@pytest.mark.parametrize("impl", ["fast", "im2col"])
def test_gradients_match_central_differences(C, F, shape, kernel, stride, padding, impl):
    layer = Conv2d(C, F, kernel, stride, padding, dtype=np.float64, rng=1, impl=impl)
    layer.bias.data = np.random.default_rng(2).standard_normal(F)  # a nonzero bias
    N, H, W = shape
    x = np.random.default_rng(3).standard_normal((N, C, H, W))
    errors = check_layer_gradients(layer, x)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) <= 1e-6, errors


def test_gradients_without_bias():
    layer = Conv2d(2, 3, 3, padding=1, bias=False, dtype=np.float64, rng=0)
    errors = check_layer_gradients(layer, np.random.default_rng(1).standard_normal((2, 2, 4, 5)))
    assert set(errors) == {"x", "weight"} and max(errors.values()) <= 1e-6


# ----- PyTorch oracle --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("C, F, kernel, stride, padding", [(1, 8, 3, 1, 1), (3, 4, 5, 2, 2), (8, 3, (3, 1), 1, "same")])
def test_matches_pytorch_conv2d(dtype, tol, C, F, kernel, stride, padding):
    layer = Conv2d(C, F, kernel, stride, padding, dtype=dtype, rng=4)
    layer.bias.data = np.random.default_rng(5).standard_normal(F).astype(dtype)
    x = np.random.default_rng(6).standard_normal((2, C, 9, 8)).astype(dtype)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, layer.weight.data, layer.bias.data))
    t_out = TF.conv2d(tx, tw, tb, stride=stride, padding=padding)
    out = layer(x, training=True)
    dout = np.random.default_rng(7).standard_normal(out.shape).astype(dtype)
    t_out.backward(torch.tensor(dout))
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == layer.weight.grad.dtype == dtype
    assert rel_error(out, t_out.detach().numpy()) <= tol
    assert rel_error(dx, tx.grad.numpy()) <= tol
    assert rel_error(layer.weight.grad, tw.grad.numpy()) <= tol
    assert rel_error(layer.bias.grad, tb.grad.numpy()) <= tol


def test_implementations_give_the_same_layer_output():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    outs = [Conv2d(3, 2, 3, padding=1, dtype=np.float64, rng=1, impl=impl)(x) for impl in ("fast", "im2col", "naive")]
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-12, atol=1e-12)


# ----- modes and caches ------------------------------------------------------------------------
def test_cache_is_kept_only_when_training_or_requires_grad():
    layer = Conv2d(1, 2, 3, rng=0)
    x = np.ones((1, 1, 5, 5), dtype=np.float32)
    layer(x)
    assert layer._cache is None
    layer(x, requires_grad=True)
    assert layer._cache is not None
    layer(x, training=True, requires_grad=False)
    assert layer._cache is None


def test_backward_assigns_gradients_rather_than_accumulating():
    layer = Conv2d(2, 2, 3, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5)).astype(np.float32)
    out = layer(x, training=True)
    layer.backward(np.ones_like(out))
    first = layer.weight.grad.copy()
    layer.backward(np.ones_like(out))
    np.testing.assert_array_equal(layer.weight.grad, first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    layer = Conv2d(2, 3, 3, padding=1, dtype=dtype, rng=0)
    x = np.ones((1, 2, 4, 4), dtype=dtype)
    out = layer(x, training=True)
    assert out.dtype == layer.backward(np.ones_like(out)).dtype == layer.weight.grad.dtype == dtype
    layer.astype(np.float64 if dtype == np.float32 else np.float32)
    other = np.float64 if dtype == np.float32 else np.float32
    assert layer(x.astype(other)).dtype == other


# ----- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, exc, match", [
    ((0, 4, 3), {}, ValueError, "in_channels must be >= 1; received 0"),
    ((3, -1, 3), {}, ValueError, "out_channels must be >= 1; received -1"),
    ((3, 4, 0), {}, ValueError, "kernel_size must be >= 1; received 0"),
    ((3, 4, (3, 0)), {}, ValueError, r"kernel_size must be >= 1; received \(3, 0\)"),
    ((3, 4, 3), {"stride": 0}, ValueError, "stride must be >= 1"),
    ((3, 4, 3), {"padding": -1}, ValueError, "padding must be >= 0"),
    ((3, 4, 3), {"padding": "full"}, ValueError, "padding must be an int, a pair, 'valid' or 'same'; received 'full'"),
    ((3, 4, 3), {"padding": "same", "stride": 2}, ValueError, "padding='same' needs stride 1"),
    ((3, 4, 2), {"padding": "same"}, ValueError, "padding='same' needs odd kernel sizes"),
    ((3, 4, 2.5), {}, TypeError, "kernel_size must be an int or a pair of ints; received 2.5"),
    ((3, 4, 3), {"bias": "yes"}, TypeError, "bias must be True or False"),
    ((3, 4, 3), {"dtype": np.int32}, ValueError, "dtype must be float32 or float64; received int32"),
    ((3, 4, 3), {"weight_init": "lecun_magic"}, ValueError, "unknown initializer 'lecun_magic'"),
    ((3, 4, 3), {"impl": "cuda"}, ValueError, "unknown convolution impl 'cuda'"),
])
def test_constructor_errors(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        Conv2d(*args, **kwargs)


def test_forward_errors_leave_the_layer_unchanged():
    layer = Conv2d(3, 4, 5, rng=0)
    good = np.ones((2, 3, 8, 8), dtype=np.float32)
    layer(good, training=True)
    weight, bias, cache = layer.weight.data.copy(), layer.bias.data.copy(), layer._cache
    bad_inputs = [
        (np.ones((2, 8, 8), dtype=np.float32), ValueError, r"expected input of shape \(N, C, H, W\).*x\[:, None\]"),
        (np.ones((2, 8, 8, 3), dtype=np.float32), ValueError,
         r"expected input of shape \(N, 3, H, W\); received \(2, 8, 8, 3\).*x.transpose\(0, 3, 1, 2\)"),
        (np.ones((2, 2, 8, 8), dtype=np.float32), ValueError, r"expected input of shape \(N, 3, H, W\)"),
        (np.ones((2, 3, 4, 8), dtype=np.float32), ValueError, r"kernel_size \(5, 5\) is larger than the padded input"),
        (np.ones((2, 3, 8, 8), dtype=np.float64), TypeError, "dtype float64 but the layer's parameters are float32"),
        (np.ones((2, 3, 8, 8), dtype=np.uint8), TypeError, "floating-point array"),
        ([[1.0]], TypeError, "numpy.ndarray"),
    ]
    for x, exc, match in bad_inputs:
        with pytest.raises(exc, match=match):
            layer(x, training=True)
        np.testing.assert_array_equal(layer.weight.data, weight)
        np.testing.assert_array_equal(layer.bias.data, bias)
        assert layer._cache is cache


def test_backward_before_a_training_forward_is_a_clear_error():
    layer = Conv2d(1, 2, 3, rng=0)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before a forward pass that keeps a cache"):
        layer.backward(np.ones((1, 2, 3, 3), dtype=np.float32))
    layer(np.ones((1, 1, 5, 5), dtype=np.float32))  # inference: no cache
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.ones((1, 2, 3, 3), dtype=np.float32))
    assert layer.weight.grad is None


def test_output_shape_errors():
    layer = Conv2d(3, 4, 3)
    assert layer.output_shape((3, 28, 28)) == (4, 26, 26)
    with pytest.raises(ValueError, match=r"\(3, H, W\); received \(28, 28, 3\).*transpose"):
        layer.output_shape((28, 28, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        layer.output_shape((3, 2, 9))


# ----- config and repr ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, text", [
    ({}, "Conv2d(1, 32, kernel_size=3)"),
    ({"padding": 1}, "Conv2d(1, 32, kernel_size=3, padding=1)"),
    ({"padding": "same"}, "Conv2d(1, 32, kernel_size=3, padding='same')"),
    ({"stride": 2, "bias": False}, "Conv2d(1, 32, kernel_size=3, stride=2, bias=False)"),
    ({"kernel_size": (3, 5), "padding": (1, 2)}, "Conv2d(1, 32, kernel_size=(3, 5), padding=(1, 2))"),
    ({"dtype": np.float64, "weight_init": "glorot_uniform", "impl": "im2col"},
     "Conv2d(1, 32, kernel_size=3, weight_init='glorot_uniform', dtype=float64, impl='im2col')"),
])
def test_repr_shows_only_non_default_settings(kwargs, text):
    kwargs = {"kernel_size": 3, **kwargs}
    assert repr(Conv2d(1, 32, **kwargs)) == text


@pytest.mark.parametrize("kwargs", [{"kernel_size": 3, "padding": "same"},
                                    {"kernel_size": (3, 5), "stride": (2, 1), "padding": (1, 0), "bias": False,
                                     "dtype": np.float64, "weight_init": "glorot_uniform", "impl": "naive"}])
def test_get_config_rebuilds_the_same_layer_through_json(kwargs):
    layer = Conv2d(3, 4, **kwargs)
    config = json.loads(json.dumps(layer.get_config()))
    clone = Conv2d(**config)
    assert clone.get_config() == layer.get_config() and repr(clone) == repr(layer)
    assert clone.weight.shape == layer.weight.shape and clone.weight.data.dtype == layer.weight.data.dtype
    assert clone.output_shape((3, 10, 9)) == layer.output_shape((3, 10, 9))


# ----- need_dx ----------------------------------------------------------
def test_backward_without_input_gradient():
    layer = Conv2d(2, 3, 3, padding=1, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 5)).astype(np.float32)
    dout = np.random.default_rng(2).standard_normal((2, 3, 5, 5)).astype(np.float32)
    layer.forward(x, training=True)
    dx = layer.backward(dout)
    dw, db = layer.weight.grad, layer.bias.grad
    assert layer.backward(dout, need_dx=False) is None and dx.shape == x.shape
    np.testing.assert_array_equal(layer.weight.grad, dw)
    np.testing.assert_array_equal(layer.bias.grad, db)
