"""Max / average / global average pooling: worked example, ties, gradients, PyTorch oracle."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.engines import runtime as backend
from cnnlab.ops import reference
from cnnlab.engines import avgpool2d_backward, avgpool2d_forward, maxpool2d_backward, maxpool2d_forward
from cnnlab.ops.pool import global_avgpool2d_backward, global_avgpool2d_forward
from cnnlab.testing import numerical_gradient, rel_error

IMPLS = ["fast", "im2col", "naive"]


# Every test in this file runs under each available backend (cnnlab.engines.runtime): the NumPy code and
# the Numba kernels must both match the reference loops and PyTorch.
@pytest.fixture(autouse=True, params=[b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def engine(request):
    with backend.backend(request.param):
        yield request.param


def _distinct(shape, seed=0, dtype=np.float64):
    """Values all distinct and at least 1 apart (a scaled random permutation): no ties, no kinks
    for a step of 1e-6."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2).astype(dtype)


# ----- worked example -------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_2x2_maxpool_worked_example(impl):
    x = np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float64)[None, None]
    out, cache = maxpool2d_forward(x, 2, impl=impl)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [9, 11]])
    dx = maxpool2d_backward(np.array([[[[2.0, 5], [3, 7]]]]), cache)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[2, 0], expected[3, 2] = 2, 5, 3, 7
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("shape, k, s, p, out_hw", [
    ((1, 1, 28, 28), 2, None, 0, (14, 14)), ((1, 1, 14, 14), 2, 2, 0, (7, 7)), ((1, 1, 7, 7), 2, None, 0, (3, 3)),
    ((1, 1, 7, 9), 3, 2, 1, (4, 5)), ((1, 1, 5, 5), 3, 1, 1, (5, 5)), ((1, 1, 6, 8), (2, 4), (2, 3), (1, 2), (4, 3)),
])
def test_output_sizes(shape, k, s, p, out_hw):
    x = _distinct(shape)
    for fwd in (maxpool2d_forward, avgpool2d_forward):
        assert fwd(x, k, s, p)[0].shape == shape[:2] + out_hw


# ----- implementations agree ------------------------------------------------------------------
# (shape, kernel, stride, padding)
LADDER = [
    ((2, 3, 8, 6), 2, None, 0),  # tiles: the reshape fast path
    ((2, 2, 7, 9), 2, 2, 0),  # stride == kernel, not divisible: general path
    ((1, 2, 7, 7), 3, 1, 1),  # overlapping windows with padding
    ((2, 1, 9, 8), 3, 2, 1),
    ((1, 3, 6, 9), (2, 3), (1, 2), (1, 1)),  # non-square
    ((1, 1, 5, 5), 5, 1, 2),
]


@pytest.mark.parametrize("shape, k, s, p", LADDER)
@pytest.mark.parametrize("data", ["distinct", "ties"])
def test_fast_and_im2col_match_naive(shape, k, s, p, data):
    rng = np.random.default_rng(1)
    x = _distinct(shape) if data == "distinct" else rng.integers(0, 3, shape).astype(np.float64)
    for fwd, bwd, ref_fwd, ref_bwd in [
        (maxpool2d_forward, maxpool2d_backward, reference.maxpool2d_forward_naive, reference.maxpool2d_backward_naive),
        (avgpool2d_forward, avgpool2d_backward, reference.avgpool2d_forward_naive, reference.avgpool2d_backward_naive),
    ]:
        want_out, want_cache = ref_fwd(x, k, s, p)
        dout = rng.standard_normal(want_out.shape)
        want_dx = ref_bwd(dout, want_cache)
        for impl in ("fast", "im2col"):
            out, cache = fwd(x, k, s, p, impl=impl)
            np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(bwd(dout, cache), want_dx, rtol=1e-12, atol=1e-12)
            if cache.argmax is not None:
                np.testing.assert_array_equal(cache.argmax, want_cache.argmax)
                # caches are interchangeable: any backward accepts any forward's cache
                np.testing.assert_allclose(ref_bwd(dout, cache), want_dx, rtol=1e-12, atol=1e-12)


# ----- gradient checks ------------------------------------------------------------------------
@pytest.mark.parametrize("shape, k, s, p", [((2, 2, 6, 4), 2, None, 0), ((1, 2, 7, 5), 3, 2, 1),
                                            ((2, 1, 5, 6), 3, 1, 1), ((1, 1, 5, 7), (2, 3), (1, 2), (1, 0))])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_gradients_match_central_differences(shape, k, s, p, kind):
    fwd, bwd = (maxpool2d_forward, maxpool2d_backward) if kind == "max" else (avgpool2d_forward, avgpool2d_backward)
    x = _distinct(shape, seed=2)
    out, cache = fwd(x, k, s, p)
    g = np.random.default_rng(3).standard_normal(out.shape)
    dx = bwd(g, cache)
    num = numerical_gradient(lambda: float(np.sum(fwd(x, k, s, p)[0] * g)), x)
    assert rel_error(dx, num) <= 1e-6


def test_global_avgpool_gradient_and_values():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 5))
    out, cache = global_avgpool2d_forward(x)
    np.testing.assert_allclose(out, x.mean(axis=(2, 3)))
    g = np.random.default_rng(5).standard_normal(out.shape)
    num = numerical_gradient(lambda: float(np.sum(global_avgpool2d_forward(x)[0] * g)), x)
    assert rel_error(global_avgpool2d_backward(g, cache), num) <= 1e-6


# ----- ties: the gradient goes to the first maximum only ---------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
def test_all_equal_window_sends_gradient_to_its_first_element(impl):
    x = np.zeros((1, 1, 4, 4))  # MNIST background: every window ties
    out, cache = maxpool2d_forward(x, 2, impl=impl)
    dx = maxpool2d_backward(np.full((1, 1, 2, 2), 7.0), cache)
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 7.0  # top-left of each window, nothing else
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("impl", IMPLS)
def test_overlapping_windows_accumulate_on_shared_maximum(impl):
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0  # the centre is the max of all four 2x2 windows (stride 1)
    out, cache = maxpool2d_forward(x, 2, 1, impl=impl)
    dx = maxpool2d_backward(np.ones((1, 1, 2, 2)), cache)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize("case", ["mnist_like", "integers", "overlap_integers", "padded_integers"])
@pytest.mark.parametrize("impl", IMPLS)
def test_ties_match_pytorch_exactly(case, impl):
    rng = np.random.default_rng(6)
    if case == "mnist_like":
        x = np.zeros((2, 1, 8, 8))
        x[:, :, 3:5, 2:6] = rng.integers(1, 4, (2, 1, 2, 4))  # a small stroke on a zero background
        k, s, p = 2, 2, 0
    else:
        x = rng.integers(-2, 3, (2, 3, 7, 6)).astype(np.float64)
        k, s, p = {"integers": (2, 2, 0), "overlap_integers": (3, 1, 0), "padded_integers": (3, 2, 1)}[case]
    tx = torch.tensor(x, requires_grad=True)
    t_out = TF.max_pool2d(tx, k, s, p)
    dout = rng.integers(-4, 5, tuple(t_out.shape)).astype(np.float64)  # integer sums: exact in any order
    t_out.backward(torch.tensor(dout))
    out, cache = maxpool2d_forward(x, k, s, p, impl=impl)
    np.testing.assert_array_equal(out, t_out.detach().numpy())
    np.testing.assert_array_equal(maxpool2d_backward(dout, cache), tx.grad.numpy())


@pytest.mark.parametrize("impl", IMPLS)
def test_maxpool_pads_with_minus_infinity_not_zero(impl):
    x = -1.0 - _distinct((1, 2, 4, 4)) ** 2  # all negative: zero padding would win every border window
    out, _ = maxpool2d_forward(x, 3, 1, 1, impl=impl)
    assert np.all(out < 0)
    np.testing.assert_array_equal(out, TF.max_pool2d(torch.tensor(x), 3, 1, 1).numpy())


# ----- PyTorch oracle ---------------------------------------------------------------------------
def _pool_table():
    cases, channels = [], [1, 3, 8]
    for k in range(1, 6):
        for s in range(1, 4):
            p = min((k + s) % 3, k // 2)
            cases.append(((2 if s == 1 else 1), channels[(k + s) % 3], 4 + k + s, 3 + 2 * k, k, s, p))
    cases += [(1, 3, 7, 9, (2, 3), (1, 2), (1, 1)), (2, 1, 8, 6, (3, 2), (3, 1), (1, 0)), (2, 3, 8, 8, 2, None, 0)]
    return cases


@pytest.mark.parametrize("N, C, H, W, k, s, p", _pool_table())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch(N, C, H, W, k, s, p, dtype):
    x = _distinct((N, C, H, W), seed=7, dtype=dtype) / 8  # exact in float32 too
    rng = np.random.default_rng(8)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    for ours_f, ours_b, theirs in [(maxpool2d_forward, maxpool2d_backward, TF.max_pool2d),
                                   (avgpool2d_forward, avgpool2d_backward, TF.avg_pool2d)]:
        tx = torch.tensor(x, requires_grad=True)
        t_out = theirs(tx, k, s, p)
        dout = rng.standard_normal(tuple(t_out.shape)).astype(dtype)
        t_out.backward(torch.tensor(dout))
        for impl in ("fast", "im2col"):
            out, cache = ours_f(x, k, s, p, impl=impl)
            dx = ours_b(dout, cache)
            assert out.dtype == dx.dtype == dtype
            assert rel_error(out, t_out.detach().numpy()) <= tol
            assert rel_error(dx, tx.grad.numpy()) <= tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 8, 1, 1), (3, 1, 4, 4)])
def test_global_avgpool_matches_pytorch_adaptive_avg_pool(dtype, shape):
    x = np.random.default_rng(9).standard_normal(shape).astype(dtype)
    tx = torch.tensor(x, requires_grad=True)
    t_out = TF.adaptive_avg_pool2d(tx, 1).flatten(1)  # (N, C)
    dout = np.random.default_rng(10).standard_normal(shape[:2]).astype(dtype)
    t_out.backward(torch.tensor(dout))
    out, cache = global_avgpool2d_forward(x)
    dx = global_avgpool2d_backward(dout, cache)
    assert out.dtype == dx.dtype == dtype and out.shape == shape[:2]
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert rel_error(out, t_out.detach().numpy()) <= tol
    assert rel_error(dx, tx.grad.numpy()) <= tol


# ----- dtypes and errors --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("k, s, p", [(2, None, 0), (3, 2, 1)])
def test_every_pooling_op_keeps_the_dtype(dtype, impl, k, s, p):
    x = _distinct((2, 2, 6, 6), dtype=dtype)
    for fwd, bwd in [(maxpool2d_forward, maxpool2d_backward), (avgpool2d_forward, avgpool2d_backward)]:
        out, cache = fwd(x, k, s, p, impl=impl)
        dx = bwd(np.ones_like(out), cache)
        assert out.dtype == dx.dtype == dtype and dx.shape == x.shape


def test_errors_name_expected_and_received():
    x = _distinct((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"padding must be at most half the kernel size, \(1, 1\)"):
        maxpool2d_forward(x, 3, 1, 2)
    with pytest.raises(ValueError, match="kernel size 5 is larger than the padded input size 4"):
        avgpool2d_forward(x, 5)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C, H, W\); received shape \(4, 4\)"):
        maxpool2d_forward(x[0, 0], 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        maxpool2d_forward(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match="unknown pooling impl 'numba2'"):
        maxpool2d_forward(x, 2, impl="numba2")
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        maxpool2d_forward(x, 0)
    out, cache = maxpool2d_forward(x, 2)
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 1, 2, 2\)"):
        maxpool2d_backward(np.ones((1, 1, 3, 3)), cache)
    for impl in IMPLS:
        for fwd, bwd in [(maxpool2d_forward, maxpool2d_backward), (avgpool2d_forward, avgpool2d_backward)]:
            out, c = fwd(x, 2, impl=impl)
            with pytest.raises(TypeError, match="dtype float64 .*; received float32"):
                bwd(out.astype(np.float32), c)
    with pytest.raises(TypeError, match="cache returned by avgpool2d_forward"):
        avgpool2d_backward(out, cache)
    with pytest.raises(ValueError, match=r"global_avgpool2d expected a non-empty float array of shape \(N, C, H, W\)"):
        global_avgpool2d_forward(x[0])
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 1\)"):
        global_avgpool2d_backward(np.ones((1, 2)), global_avgpool2d_forward(x)[1])
    with pytest.raises(TypeError, match="dtype float64; received float32"):
        global_avgpool2d_backward(np.ones((1, 1), dtype=np.float32), global_avgpool2d_forward(x)[1])
