"""Activation ops: values and gradients vs PyTorch autograd, central differences, stability, dtype."""
import warnings

import numpy as np
import pytest
import torch

from cnnlab.ops import activation as A
from cnnlab.testing import numerical_gradient, rel_error

PAIRS = {
    "relu": (A.relu_forward, A.relu_backward, torch.relu),
    "leaky_relu": (lambda x: A.leaky_relu_forward(x, 0.1), A.leaky_relu_backward,
                   lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    "sigmoid": (A.sigmoid_forward, A.sigmoid_backward, torch.sigmoid),
    "tanh": (A.tanh_forward, A.tanh_backward, torch.tanh),
    "softmax": (lambda x: A.softmax_forward(x, axis=1), A.softmax_backward, lambda t: torch.softmax(t, dim=1)),
}


def off_kink(shape, seed=0):
    """Random values with |x| >= 0.1, so +-1e-6 steps never cross ReLU's kink."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, np.sign(x) * 0.1 + x, x)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("shape", [(1, 5), (3, 4, 5, 2)])
def test_forward_backward_match_torch(name, shape):
    fwd, bwd, torch_fn = PAIRS[name]
    x = off_kink(shape)
    dout = np.random.default_rng(1).standard_normal(shape)
    out, cache = fwd(x)
    xt = torch.tensor(x, requires_grad=True)
    ot = torch_fn(xt)
    ot.backward(torch.from_numpy(dout))
    assert rel_error(out, ot.detach().numpy()) < 1e-14
    assert rel_error(bwd(dout, cache), xt.grad.numpy()) < 1e-13


@pytest.mark.parametrize("name", PAIRS)
def test_central_differences(name):
    fwd, bwd, _ = PAIRS[name]
    x = off_kink((3, 5, 2), seed=2)
    g = np.random.default_rng(3).standard_normal(x.shape)
    out, cache = fwd(x)
    dx = bwd(g, cache)
    num = numerical_gradient(lambda: float(np.sum(fwd(x)[0] * g)), x)
    assert rel_error(dx, num) < 1e-6


@pytest.mark.parametrize("name", PAIRS)
def test_float32_in_float32_out(name):
    fwd, bwd, _ = PAIRS[name]
    x = off_kink((2, 3, 4)).astype(np.float32)
    out, cache = fwd(x)
    dx = bwd(np.ones_like(out), cache)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    assert A.softmax(x).dtype == np.float32 and A.log_softmax(x).dtype == np.float32


def test_relu_cache_is_a_boolean_mask_and_gradient_at_zero_is_zero():
    x = np.array([-1.0, 0.0, 2.0])
    out, mask = A.relu_forward(x)
    assert mask.dtype == np.bool_
    assert A.relu_backward(np.ones(3), mask).tolist() == [0.0, 0.0, 1.0]
    assert A.relu_forward(np.array([-np.inf, np.inf]))[0].tolist() == [0.0, np.inf]


def test_leaky_relu_values():
    out, cache = A.leaky_relu_forward(np.array([-2.0, 3.0]), 0.2)
    assert out.tolist() == [-0.4, 3.0]
    assert A.leaky_relu_backward(np.array([1.0, 1.0]), cache).tolist() == [0.2, 1.0]


def test_sigmoid_extremes_are_finite_and_precise_without_warnings():
    x = np.array([-800.0, -50.0, -1.0, 0.0, 1.0, 50.0, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.sigmoid(x)
        s32 = A.sigmoid(x.astype(np.float32))
    expected = torch.sigmoid(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s, expected, rtol=1e-15, atol=0)  # relative: sigmoid(-50) ~ 2e-22 exact
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert np.all(np.isfinite(s32)) and s32.dtype == np.float32


def test_softmax_stable_for_huge_logits():
    x = np.array([[1e4, 1e4, -1e4], [-1e4, 0.0, 1e4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.softmax(x, axis=1)
        ls = A.log_softmax(x, axis=1)
    assert s.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(ls, torch.log_softmax(torch.from_numpy(x), 1).numpy(), rtol=1e-15)
    assert ls[0, 2] == -2e4 - np.log(2)  # finite where log(softmax) would be -inf


def test_softmax_axis_and_rows_sum_to_one():
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    for axis in (0, 1, -1):
        s = A.softmax(x, axis=axis)
        np.testing.assert_allclose(s.sum(axis=axis), 1.0, rtol=1e-14)
        np.testing.assert_allclose(s, torch.softmax(torch.from_numpy(x), axis).numpy(), rtol=1e-14)
        np.testing.assert_allclose(np.exp(A.log_softmax(x, axis)), s, rtol=1e-14)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3, 1.0, 1.5, -0.3])
def test_leaky_relu_any_slope_matches_torch(slope):
    x = off_kink((4, 6), seed=5)
    dout = np.random.default_rng(6).standard_normal(x.shape)
    out, cache = A.leaky_relu_forward(x, slope)
    xt = torch.tensor(x, requires_grad=True)
    ot = torch.nn.functional.leaky_relu(xt, slope)
    ot.backward(torch.from_numpy(dout))
    assert np.array_equal(out, ot.detach().numpy())
    assert np.array_equal(A.leaky_relu_backward(dout, cache), xt.grad.numpy())
