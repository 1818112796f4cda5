"""Property tests (Hypothesis) over random shapes, strides, paddings and dtypes.

For every drawn configuration:

* the fast and im2col convolution and pooling ops equal the loop oracles of
  ``cnnlab.ops.reference``, forward and backward;
* output shapes follow ``conv_output_size`` (and the layers' ``output_shape`` agrees);
* dtypes are preserved (float32 stays float32 through forward and backward);
* float64 central-difference gradients match the analytic ones (small configurations).

Examples are derandomized (the same cases every run) and small, so the file stays fast.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnlab.layers import AvgPool2d, Conv2d, MaxPool2d
from cnnlab.engines import (avgpool2d_backward, avgpool2d_forward, conv2d_backward, conv2d_forward, maxpool2d_backward,
                            maxpool2d_forward)
from cnnlab.ops.pool import global_avgpool2d_backward, global_avgpool2d_forward
from cnnlab.ops.reference import (
    avgpool2d_backward_naive, avgpool2d_forward_naive, conv2d_backward_naive, conv2d_forward_naive,
    maxpool2d_backward_naive, maxpool2d_forward_naive,
)
from cnnlab.ops.shapes import conv_output_size
from cnnlab.testing import numerical_gradient, rel_error

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
GRAD_SETTINGS = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TOL = {np.float32: 2e-5, np.float64: 1e-12}


@st.composite
def conv_configs(draw, max_hw=7, max_c=3):
    """(x, w, b, stride, padding) with the kernel fitting the padded input."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, max_c)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    kh = draw(st.integers(1, min(5, h + 2 * ph)))
    kw = draw(st.integers(1, min(5, w + 2 * pw)))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((f, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    return x, weight, b, (sh, sw), (ph, pw)


@st.composite
def pool_configs(draw, max_hw=8):
    """(x, kernel, stride, padding) with padding <= kernel // 2 and the window fitting; x has
    distinct values (0.1 apart) so max pooling has no ties and no kinks within h = 1e-6."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    if kh > h + 2 * ph or kw > w + 2 * pw:
        kh, kw, ph, pw = min(kh, h), min(kw, w), 0, 0
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.permutation(n * c * h * w).astype(np.float64) * 0.1 - 0.05 * n * c * h * w
    x = values.reshape(n, c, h, w).astype(dtype)
    return x, (kh, kw), stride, (ph, pw)


def _close(a, b, dtype):
    assert a.shape == b.shape
    assert rel_error(a, b) <= TOL[dtype], rel_error(a, b)


# ----- convolution ------------------------------------------------------------------------------------
@SETTINGS
@given(conv_configs(), st.sampled_from(["fast", "im2col"]))
def test_conv_fast_equals_reference(cfg, impl):
    x, w, b, stride, padding = cfg
    dtype = x.dtype.type
    out, cache = conv2d_forward(x, w, b, stride, padding, impl=impl)
    ref, ref_cache = conv2d_forward_naive(x, w, b, stride, padding)
    n, f = x.shape[0], w.shape[0]
    expected_shape = (n, f, conv_output_size(x.shape[2], w.shape[2], stride[0], padding[0]),
                      conv_output_size(x.shape[3], w.shape[3], stride[1], padding[1]))
    assert out.shape == ref.shape == expected_shape
    assert out.dtype == x.dtype
    _close(out, ref, dtype)

    dout = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    dx, dw, db = conv2d_backward(dout, cache)
    rdx, rdw, rdb = conv2d_backward_naive(dout, ref_cache)
    for got, want, like in ((dx, rdx, x), (dw, rdw, w)):
        assert got.dtype == like.dtype and got.shape == like.shape
        _close(got, want, dtype)
    if b is None:
        assert db is None and rdb is None
    else:
        assert db.dtype == b.dtype
        _close(db, rdb, dtype)


@SETTINGS
@given(conv_configs())
def test_conv_layer_output_shape_matches_forward(cfg):
    x, w, b, stride, padding = cfg
    layer = Conv2d(w.shape[1], w.shape[0], w.shape[2:], stride=stride, padding=padding, bias=b is not None,
                   dtype=x.dtype, rng=0)
    out = layer.forward(x)
    assert out.shape[1:] == layer.output_shape(x.shape[1:])
    assert out.dtype == x.dtype


@GRAD_SETTINGS
@given(conv_configs(max_hw=5, max_c=2))
def test_conv_gradients_float64(cfg):
    x, w, b, stride, padding = cfg
    x, w = x.astype(np.float64), w.astype(np.float64)
    b = None if b is None else b.astype(np.float64)
    out, cache = conv2d_forward(x, w, b, stride, padding)
    g = np.random.default_rng(2).standard_normal(out.shape)
    dx, dw, db = conv2d_backward(g, cache)

    def loss():
        return float(np.sum(conv2d_forward(x, w, b, stride, padding)[0] * g))

    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-7
    assert rel_error(dw, numerical_gradient(loss, w)) < 1e-7
    if b is not None:
        assert rel_error(db, numerical_gradient(loss, b)) < 1e-7


# ----- pooling ---------------------------------------------------------------------------------------------
POOLS = {
    "max": (maxpool2d_forward, maxpool2d_backward, maxpool2d_forward_naive, maxpool2d_backward_naive, MaxPool2d),
    "avg": (avgpool2d_forward, avgpool2d_backward, avgpool2d_forward_naive, avgpool2d_backward_naive, AvgPool2d),
}


@SETTINGS
@given(pool_configs(), st.sampled_from(["max", "avg"]), st.sampled_from(["fast", "im2col"]))
def test_pool_fast_equals_reference(cfg, kind, impl):
    x, kernel, stride, padding = cfg
    fwd, bwd, fwd_ref, bwd_ref, _ = POOLS[kind]
    dtype = x.dtype.type
    out, cache = fwd(x, kernel, stride, padding, impl=impl)
    ref, ref_cache = fwd_ref(x, kernel, stride, padding)
    s = kernel if stride is None else stride
    expected_shape = x.shape[:2] + (conv_output_size(x.shape[2], kernel[0], s[0], padding[0]),
                                    conv_output_size(x.shape[3], kernel[1], s[1], padding[1]))
    assert out.shape == ref.shape == expected_shape
    assert out.dtype == x.dtype
    _close(out, ref, dtype)
    if kind == "max":
        np.testing.assert_array_equal(cache.argmax, ref_cache.argmax)

    dout = np.random.default_rng(3).standard_normal(out.shape).astype(x.dtype)
    dx, rdx = bwd(dout, cache), bwd_ref(dout, ref_cache)
    assert dx.dtype == x.dtype and dx.shape == x.shape
    _close(dx, rdx, dtype)


@SETTINGS
@given(pool_configs(), st.sampled_from(["max", "avg"]))
def test_pool_layer_output_shape_matches_forward(cfg, kind):
    x, kernel, stride, padding = cfg
    layer = POOLS[kind][4](kernel, stride=stride, padding=padding)
    out = layer.forward(x)
    assert out.shape[1:] == layer.output_shape(x.shape[1:])
    assert out.dtype == x.dtype


@GRAD_SETTINGS
@given(pool_configs(max_hw=6), st.sampled_from(["max", "avg"]))
def test_pool_gradients_float64(cfg, kind):
    x, kernel, stride, padding = cfg
    x = x.astype(np.float64)
    fwd, bwd = POOLS[kind][:2]
    out, cache = fwd(x, kernel, stride, padding)
    g = np.random.default_rng(4).standard_normal(out.shape)
    dx = bwd(g, cache)

    def loss():
        return float(np.sum(fwd(x, kernel, stride, padding)[0] * g))

    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-7


@SETTINGS
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6),
       st.sampled_from([np.float32, np.float64]))
def test_global_avgpool_shape_dtype_and_gradient(n, c, h, w, dtype):
    x = np.random.default_rng(n * 100 + c * 10 + h).standard_normal((n, c, h, w)).astype(dtype)
    out, cache = global_avgpool2d_forward(x)
    assert out.shape == (n, c) and out.dtype == dtype
    eps = 1e-6 if dtype == np.float32 else 1e-12  # any summation order: near-zero means lose relative digits
    np.testing.assert_allclose(out, x.astype(np.float64).mean(axis=(2, 3)), rtol=eps, atol=eps * np.abs(x).max())
    dx = global_avgpool2d_backward(np.ones((n, c), dtype), cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    np.testing.assert_allclose(dx, np.full(x.shape, 1.0 / (h * w)), rtol=1e-6)


# ----- the formula itself --------------------------------------------------------------------------------------
@SETTINGS
@given(st.integers(1, 64), st.integers(1, 9), st.integers(1, 5), st.integers(0, 4))
def test_conv_output_size_counts_the_windows(n, k, s, p):
    if k > n + 2 * p:
        with pytest.raises(ValueError, match=f"kernel size {k} is larger than the padded input size {n + 2 * p}"):
            conv_output_size(n, k, s, p)
        return
    starts = [i for i in range(0, n + 2 * p) if i + k <= n + 2 * p and i % s == 0]
    assert conv_output_size(n, k, s, p) == len(starts)
