"""conv2d_forward / conv2d_backward: worked example, gradients, implementations, PyTorch oracle."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.engines import runtime as backend
from cnnlab.engines import (can_fuse_maxpool, conv2d_backward, conv2d_backward_fast, conv2d_forward,
                            conv2d_relu_maxpool2d_backward, conv2d_relu_maxpool2d_forward)
from cnnlab.engines import numba_conv as conv_module
from cnnlab.ops import reference
from cnnlab.ops.conv import ConvCache
from cnnlab.ops.conv import conv2d_backward as conv2d_backward_im2col
from cnnlab.ops.shapes import conv_output_size
from cnnlab.testing import numerical_gradient, rel_error

IMPLS = ["fast", "im2col", "naive"]


# Every test in this file runs under each available backend (cnnlab.engines.runtime): the NumPy code and
# the Numba kernels must both match the reference loops and PyTorch.
@pytest.fixture(autouse=True, params=[b for b in backend.BACKENDS if b == "numpy" or backend.HAVE_NUMBA])
def engine(request):
    with backend.backend(request.param):
        yield request.param


def _data(N, C, F, H, W, KH, KW, dtype=np.float64, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, KH, KW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if bias else None
    return x, w, b


# ----- worked example and output sizes --------------------------------------------------------
def test_vertical_edge_worked_example():
    x = np.zeros((1, 1, 7, 7))
    x[..., :3] = 10  # left three columns bright
    w = np.array([[1.0, 0, -1]] * 3)[None, None]  # (1, 1, 3, 3)
    for impl in IMPLS:
        out, _ = conv2d_forward(x, w, None, impl=impl)
        assert out.shape == (1, 1, 5, 5)
        np.testing.assert_array_equal(out[0, 0], np.tile([0.0, 30, 30, 0, 0], (5, 1)))


@pytest.mark.parametrize("n, k, s, p, expected", [
    (28, 3, 1, 1, 28), (7, 3, 1, 0, 5), (28, 2, 2, 0, 14), (7, 3, 2, 1, 4), (10, 5, 3, 2, 4),
    (32, 5, 1, 0, 28), (5, 5, 1, 0, 1), (6, 4, 3, 0, 1), (1, 3, 1, 1, 1),
])
def test_output_size_formula_and_op_shape(n, k, s, p, expected):
    assert conv_output_size(n, k, s, p) == expected
    x, w, b = _data(1, 1, 2, n, n + 1, k, k)
    out, _ = conv2d_forward(x, w, b, s, p)
    assert out.shape == (1, 2, expected, conv_output_size(n + 1, k, s, p))


# ----- implementations agree -------------------------------------------------------------------
# (N, C, F, H, W, KH, KW, stride, padding)
LADDER = [
    (2, 3, 4, 7, 6, 3, 3, (1, 1), (1, 1)),
    (1, 2, 3, 8, 7, 3, 2, (2, 1), (1, 0)),
    (2, 1, 2, 6, 6, 1, 1, (1, 1), (0, 0)),
    (1, 3, 2, 9, 5, 4, 3, (3, 2), (2, 1)),
    (2, 2, 3, 5, 5, 5, 5, (1, 1), (2, 2)),
    (1, 2, 2, 3, 3, 1, 1, (1, 1), (3, 2)),  # padding wider than the kernel: borders are pure bias
]


@pytest.mark.parametrize("N, C, F, H, W, KH, KW, stride, padding", LADDER)
@pytest.mark.parametrize("bias", [True, False])
def test_fast_and_im2col_match_naive_forward_and_backward(N, C, F, H, W, KH, KW, stride, padding, bias):
    x, w, b = _data(N, C, F, H, W, KH, KW, bias=bias)
    ref_out, ref_cache = conv2d_forward(x, w, b, stride, padding, impl="naive")
    dout = np.random.default_rng(9).standard_normal(ref_out.shape)
    ref = conv2d_backward(dout, ref_cache)
    for impl in ("fast", "im2col"):
        out, cache = conv2d_forward(x, w, b, stride, padding, impl=impl)
        assert cache.impl == impl
        np.testing.assert_allclose(out, ref_out, rtol=1e-12, atol=1e-12)
        for got, want in zip(conv2d_backward(dout, cache), ref):
            if want is None:
                assert got is None
            else:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_caches_are_interchangeable_between_implementations():
    x, w, b = _data(2, 3, 2, 6, 5, 3, 3)
    out, naive_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    dout = np.random.default_rng(1).standard_normal(out.shape)
    want = reference.conv2d_backward_naive(dout, naive_cache)
    _, fast_cache = conv2d_forward(x, w, b, 1, 1, impl="fast")
    _, im2col_cache = conv2d_forward(x, w, b, 1, 1, impl="im2col")
    for got in (conv2d_backward_fast(dout, naive_cache), conv2d_backward_im2col(dout, fast_cache),
                conv2d_backward_fast(dout, im2col_cache), reference.conv2d_backward_naive(dout, fast_cache)):
        for g, t in zip(got, want):
            np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)


# ----- gradient checks (float64 central differences) ------------------------------------------
@pytest.mark.parametrize("N, C, F, H, W, KH, KW, stride, padding", [
    (2, 3, 2, 5, 7, 3, 3, (1, 1), (1, 1)),  # odd, non-square input
    (1, 2, 3, 7, 6, 3, 3, (2, 2), (1, 1)),  # stride 2 with padding, batch of 1
    (2, 2, 2, 6, 5, 2, 3, (1, 2), (0, 1)),  # non-square kernel and stride
    (1, 1, 2, 5, 5, 5, 1, (1, 1), (2, 0)),  # 5x1 kernel
])
@pytest.mark.parametrize("impl", ["fast", "im2col"])
def test_gradients_match_central_differences(N, C, F, H, W, KH, KW, stride, padding, impl):
    x, w, b = _data(N, C, F, H, W, KH, KW, seed=3)
    out, cache = conv2d_forward(x, w, b, stride, padding, impl=impl)
    g = np.random.default_rng(4).standard_normal(out.shape)
    dx, dw, db = conv2d_backward(g, cache)

    def loss():
        return float(np.sum(conv2d_forward(x, w, b, stride, padding, impl=impl)[0] * g))

    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-6
    assert rel_error(dw, numerical_gradient(loss, w)) <= 1e-6
    assert rel_error(db, numerical_gradient(loss, b)) <= 1e-6


# ----- the 180-degree rule ---------------------------------------------------------------------
def _full_correlation_with_rotated_kernel(dout, w, padding, x_shape):
    """dx[n, c] = sum_f full_corr(dout[n, f], rot180(w[f, c])), cropped by the forward padding."""
    _, _, H, W = x_shape
    KH, KW = w.shape[2:]
    ph, pw = padding
    dp = np.pad(dout, ((0, 0), (0, 0), (KH - 1, KH - 1), (KW - 1, KW - 1)))  # "full": every overlap
    rot = w[:, :, ::-1, ::-1]  # (F, C, KH, KW) rotated 180 degrees
    Hf, Wf = dout.shape[2] + KH - 1, dout.shape[3] + KW - 1  # = H + 2ph, W + 2pw
    full = np.zeros((dout.shape[0], w.shape[1], Hf, Wf))
    for i in range(KH):
        for j in range(KW):
            full += np.einsum("nfhw,fc->nchw", dp[:, :, i:i + Hf, j:j + Wf], rot[:, :, i, j])
    return full[:, :, ph:ph + H, pw:pw + W]


@pytest.mark.parametrize("H, W, KH, KW, padding", [(6, 5, 3, 3, (0, 0)), (5, 7, 3, 2, (1, 1)), (4, 4, 5, 5, (2, 2))])
def test_stride1_dx_is_full_correlation_of_dout_with_rotated_kernel(H, W, KH, KW, padding):
    x, w, b = _data(2, 3, 4, H, W, KH, KW, seed=5)
    out, cache = conv2d_forward(x, w, b, 1, padding)
    dout = np.random.default_rng(6).standard_normal(out.shape)
    dx, _, _ = conv2d_backward(dout, cache)
    np.testing.assert_allclose(dx, _full_correlation_with_rotated_kernel(dout, w, padding, x.shape), rtol=1e-12,
                               atol=1e-12)


# ----- PyTorch oracle ---------------------------------------------------------------------------
def _torch_table():
    cases, channels = [], [1, 3, 8]
    for k in range(1, 6):
        for s in range(1, 4):
            p = min((k + s) % 3, k // 2 + 1)
            H, W = 4 + k + s, 3 + 2 * k  # non-square, always >= kernel
            cases.append((2 if s == 1 else 1, channels[(k + s) % 3], 1 + (k % 3), H, W, k, k, s, p))
    for k, C in [(1, 3), (3, 1), (3, 8), (5, 3)]:
        cases.append((1, C, 2, 6, 9, k, k, 1, "same"))
    cases += [(1, 3, 2, 7, 8, 3, 2, (2, 1), (0, 1)), (2, 1, 3, 5, 9, 2, 5, (1, 3), (1, 2))]  # non-square kernels
    return cases


@pytest.mark.parametrize("N, C, F, H, W, KH, KW, stride, padding", _torch_table())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_pytorch_forward_and_gradients(N, C, F, H, W, KH, KW, stride, padding, dtype):
    x, w, b = _data(N, C, F, H, W, KH, KW, dtype=dtype, seed=7)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t_out = TF.conv2d(tx, tw, tb, stride=stride, padding=padding)
    dout = np.random.default_rng(8).standard_normal(tuple(t_out.shape)).astype(dtype)
    t_out.backward(torch.tensor(dout))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for impl in ("fast", "im2col"):
        out, cache = conv2d_forward(x, w, b, stride, padding, impl=impl)
        dx, dw, db = conv2d_backward(dout, cache)
        assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
        assert rel_error(out, t_out.detach().numpy()) <= tol
        assert rel_error(dx, tx.grad.numpy()) <= tol
        assert rel_error(dw, tw.grad.numpy()) <= tol
        assert rel_error(db, tb.grad.numpy()) <= tol


# ----- dtypes ----------------------------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2])
def test_every_output_keeps_the_input_dtype(impl, dtype, stride):
    x, w, b = _data(2, 2, 3, 5, 6, 3, 3, dtype=dtype)
    out, cache = conv2d_forward(x, w, b, stride, 1, impl=impl)
    dx, dw, db = conv2d_backward(np.ones_like(out), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert out.flags.c_contiguous and dx.flags.c_contiguous


def test_no_bias_gives_db_none():
    x, w, _ = _data(1, 2, 2, 4, 4, 3, 3, bias=False)
    out, cache = conv2d_forward(x, w, None, 1, 1)
    assert cache.b is None and conv2d_backward(np.ones_like(out), cache)[2] is None


def test_float32_result_is_close_to_float64():
    x, w, b = _data(2, 8, 4, 9, 9, 3, 3)
    out64, _ = conv2d_forward(x, w, b, 1, 1)
    out32, _ = conv2d_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), 1, 1)
    assert rel_error(out32, out64) <= 1e-6


# ----- errors ------------------------------------------------------------------------------------
def test_errors_name_expected_and_received():
    x, w, b = _data(1, 3, 2, 5, 5, 3, 3)
    with pytest.raises(ValueError, match=r"x has 2 channels .* w expects 3"):
        conv2d_forward(x[:, :2], w, b)
    with pytest.raises(TypeError, match="one dtype"):
        conv2d_forward(x.astype(np.float32), w, b)
    with pytest.raises(TypeError, match="float32 or float64"):
        conv2d_forward(x.astype(np.int64), w, b)
    with pytest.raises(ValueError, match=r"expected x of shape \(N, C, H, W\); received shape \(3, 5, 5\)"):
        conv2d_forward(x[0], w, b)
    with pytest.raises(ValueError, match=r"expected b of shape \(2,\)"):
        conv2d_forward(x, w, b[:1])
    with pytest.raises(ValueError, match="kernel size 7 is larger than the padded input size 6"):
        conv2d_forward(x[..., :4, :4], np.ones((2, 3, 7, 7)), b, 1, 1)
    with pytest.raises(ValueError, match="unknown convolution impl 'gpu'"):
        conv2d_forward(x, w, b, impl="gpu")
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        conv2d_forward(x, w, b, 2, "same")
    out, cache = conv2d_forward(x, w, b)
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 2, 3, 3\)"):
        conv2d_backward(out[:, :1], cache)
    with pytest.raises(TypeError, match="dtype float64 .*; received float32"):
        conv2d_backward(out.astype(np.float32), cache)
    with pytest.raises(TypeError, match="cache returned by conv2d_forward"):
        conv2d_backward(out, (x, w, b))
    assert isinstance(cache, ConvCache)


# ----- skipping the input gradient ---------------------------------------------------------------
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0)])
def test_need_dx_false_skips_only_dx(impl, stride, padding):
    x, w, b = _data(2, 3, 4, 7, 6, 3, 3)
    out, cache = conv2d_forward(x, w, b, stride, padding, impl=impl)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx, dw, db = conv2d_backward(dout, cache)
    none, dw2, db2 = conv2d_backward(dout, cache, need_dx=False)
    assert none is None and dx.shape == x.shape
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


# ----- the fused Conv -> ReLU -> MaxPool op -----------------------------------------------------------
FUSED = [  # (N, C, F, H, W, KH, KW, stride, padding, pool)
    (2, 1, 4, 8, 8, 3, 3, 1, 1, 2),  # simple_cnn's first block, small
    (3, 5, 6, 6, 10, 3, 3, 1, 1, (2, 5)),  # non-square pooling
    (1, 2, 3, 9, 9, 3, 3, 2, 1, 5),  # strided conv, one window over the whole map
    (2, 3, 2, 7, 7, 2, 2, 1, 0, 3),  # valid padding
]


def _unfused(x, w, b, stride, padding, pool, dout):
    from cnnlab.ops.activation import relu_backward, relu_forward
    from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward

    out, cc = conv2d_forward(x, w, b, stride, padding)
    act, mask = relu_forward(out)
    pooled, pc = maxpool2d_forward(act, pool)
    return pooled, pc.argmax, conv2d_backward(relu_backward(maxpool2d_backward(dout, pc), mask), cc)


def _assert_fused_is_bitwise_unfused(x, w, b, seed):
    """Conv(pad 1) -> ReLU -> MaxPool(2) fused gives the three ops' output and gradients, bit for bit."""
    pooled, fcache = conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, 2)
    dp = np.random.default_rng(seed).standard_normal(pooled.shape)
    want_pooled, _, want = _unfused(x, w, b, 1, 1, 2, dp)
    np.testing.assert_array_equal(pooled, want_pooled)
    for got, exp in zip(conv2d_relu_maxpool2d_backward(dp, fcache), want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("N, C, F, H, W, KH, KW, stride, padding, pool", FUSED)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_fused_conv_relu_maxpool_is_bitwise_the_three_ops(N, C, F, H, W, KH, KW, stride, padding, pool, dtype,
                                                           bias):
    x, w, b = _data(N, C, F, H, W, KH, KW, dtype=dtype, seed=11, bias=bias)
    x[0, 0, :3] = 0  # flat zero regions: tied windows and ReLU kinks, as in MNIST
    pooled, cache = conv2d_relu_maxpool2d_forward(x, w, b, stride, padding, pool)
    dout = np.random.default_rng(12).standard_normal(pooled.shape).astype(dtype)
    grads = conv2d_relu_maxpool2d_backward(dout, cache)
    want_pooled, want_argmax, want = _unfused(x, w, b, stride, padding, pool, dout)
    assert pooled.dtype == dtype and all(g is None or g.dtype == dtype for g in grads)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(cache.argmax, want_argmax)
    for got, exp in zip(grads, want):
        if exp is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, exp)
    _, dw, db = conv2d_relu_maxpool2d_backward(dout, cache, need_dx=False)
    np.testing.assert_array_equal(dw, want[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_conv_relu_maxpool_matches_pytorch(dtype):
    x, w, b = _data(3, 4, 6, 10, 12, 3, 3, dtype=dtype, seed=13)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t_out = TF.max_pool2d(TF.relu(TF.conv2d(tx, tw, tb, padding=1)), 2)
    dout = np.random.default_rng(14).standard_normal(tuple(t_out.shape)).astype(dtype)
    t_out.backward(torch.tensor(dout))
    pooled, cache = conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, 2)
    dx, dw, db = conv2d_relu_maxpool2d_backward(dout, cache)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for ours, theirs in [(pooled, t_out), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)]:
        assert rel_error(ours, theirs.detach().numpy()) <= tol


def test_fused_errors_name_expected_and_received():
    x, w, b = _data(1, 2, 3, 7, 7, 3, 3)
    with pytest.raises(ValueError, match=r"tile the conv output \(7, 7\); received pool_size=\(2, 2\)"):
        conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, 2)
    pooled, cache = conv2d_relu_maxpool2d_forward(x[..., :6, :6], w, b, 1, 1, 2)
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 3, 3, 3\)"):
        conv2d_relu_maxpool2d_backward(pooled[..., :2], cache)
    with pytest.raises(TypeError, match="dtype float64; received float32"):
        conv2d_relu_maxpool2d_backward(pooled.astype(np.float32), cache)
    with pytest.raises(TypeError, match="cache returned by conv2d_relu_maxpool2d_forward"):
        conv2d_relu_maxpool2d_backward(pooled, cache.conv)
    assert can_fuse_maxpool((6, 6), (2, 2), (2, 2), (0, 0)) and not can_fuse_maxpool((6, 6), (2, 2), (1, 1), (0, 0))


# ----- the two backends compute the same bits --------------------------------------------------------
@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="needs both backends")
@pytest.mark.parametrize("N, C, F, H, W, KH, KW, stride, padding", LADDER)
def test_numba_gemm_path_is_bitwise_numpy_im2col(N, C, F, H, W, KH, KW, stride, padding, monkeypatch):
    # same columns, same GEMM products, col2im adding in the same (i, j) order: identical numbers
    # (these shapes are small enough for the direct loops; force the GEMM path); the bias
    # gradient alone is summed in float64 by the Numba kernels (NumPy sums float32 pairwise):
    # equal to float32 rounding, and at least as close to the exact sum
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 0)
    x, w, b = _data(N, C, F, H, W, KH, KW, dtype=np.float32, seed=15)
    with backend.backend("numba"):
        out, cache = conv2d_forward(x, w, b, stride, padding, impl="fast")
        dout = np.random.default_rng(16).standard_normal(out.shape).astype(np.float32)
        got = conv2d_backward(dout, cache)
    with backend.backend("numpy"):
        want_out, want_cache = conv2d_forward(x, w, b, stride, padding, impl="im2col")
        want = conv2d_backward(dout, want_cache)
    np.testing.assert_array_equal(out, want_out)
    for g, t in zip(got[:2], want[:2]):
        np.testing.assert_array_equal(g, t)
    exact = dout.astype(np.float64).sum(axis=(0, 2, 3))
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6, atol=1e-6)
    assert np.all(np.abs(got[2] - exact) <= np.abs(want[2] - exact) + 1e-7)


@pytest.mark.parametrize("direct_max_k", [0, 10_000])
def test_gemm_and_direct_paths_both_match_naive(direct_max_k, monkeypatch):
    # whichever path the fast impl takes (GEMM for many inputs per output, direct loops for few)
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", direct_max_k)
    for N, C, F, H, W, KH, KW, stride, padding in LADDER:
        x, w, b = _data(N, C, F, H, W, KH, KW, seed=17)
        want_out, want_cache = conv2d_forward(x, w, b, stride, padding, impl="naive")
        dout = np.random.default_rng(18).standard_normal(want_out.shape)
        out, cache = conv2d_forward(x, w, b, stride, padding, impl="fast")
        np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
        for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, want_cache)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        pooled_in = x[..., :H - H % 2, :W - W % 2] if stride == (1, 1) and padding == (1, 1) else None
        if pooled_in is not None and KH == 3:  # the fused op on the same path, bitwise
            _assert_fused_is_bitwise_unfused(pooled_in, w, b, seed=19)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the direct loops are Numba kernels")
@pytest.mark.parametrize("F", [5, 8, 11])
def test_direct_path_in_blocks_of_four_filters(F, monkeypatch):
    # the direct loops run four 3-wide filters per pass and the rest one by one: same numbers as
    # the loops, and the fused op still gives the plain ops' bits
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 10_000)
    x, w, b = _data(2, 2, F, 6, 8, 3, 3, seed=23)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
    assert cache.layout == "direct"
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(24).standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, want_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    _assert_fused_is_bitwise_unfused(x, w, b, seed=25)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the direct loops are Numba kernels")
@pytest.mark.parametrize("N", [4, 6, 9])
def test_direct_weight_gradient_in_blocks_of_four_images(N, monkeypatch):
    # the weight gradient adds four images per pass and the rest one by one: the loops' numbers,
    # and the fused op (which builds its gradient image by image) still gives the plain ops' bits
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 10_000)
    x, w, b = _data(N, 1, 5, 6, 8, 3, 3, seed=29)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
    assert cache.layout == "direct"
    dout = np.random.default_rng(30).standard_normal(out.shape)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, want_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    _assert_fused_is_bitwise_unfused(x, w, b, seed=31)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the direct loops are Numba kernels")
@pytest.mark.parametrize("need_dx", [True, False])
@pytest.mark.parametrize("winograd", [True, False])
def test_direct_forward_with_gemm_backward(need_dx, winograd, monkeypatch):
    # many filters times inputs (an RGB first layer's 64 x 27): the forward convolves directly,
    # the backward runs the GEMMs (or Winograd's transforms) from x; same numbers as the loops,
    # the fused op the plain ops' bits
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 10_000)
    monkeypatch.setattr(conv_module, "DIRECT_BACKWARD_MAX_FK", 0)
    monkeypatch.setattr(conv_module, "WINOGRAD", winograd)
    monkeypatch.setattr(conv_module.winograd, "MIN_CHANNELS", 1)  # 3 channels: the GEMMs unless told
    x, w, b = _data(3, 3, 6, 6, 8, 3, 3, seed=28)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
    assert cache.layout == "direct"
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(29).standard_normal(out.shape)
    got, want = conv2d_backward(dout, cache, need_dx=need_dx), conv2d_backward(dout, want_cache)
    assert (got[0] is None) == (not need_dx)
    for g, t in zip(got, want):
        if g is not None:
            np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
    _assert_fused_is_bitwise_unfused(x, w, b, seed=30)
    pooled, fcache = conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, 2)  # first layer: no dx
    dp = np.random.default_rng(31).standard_normal(pooled.shape)
    dx, dw, db = conv2d_relu_maxpool2d_backward(dp, fcache, need_dx=False)
    full = conv2d_relu_maxpool2d_backward(dp, fcache)
    assert dx is None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])


@pytest.mark.parametrize("images_per_chunk", [1, 2])
def test_gemm_path_in_chunks_of_images(images_per_chunk, monkeypatch):
    # the Numba GEMM path runs a few images at a time (uneven last chunk here): same results,
    # and the fused op still gives the plain ops' bits
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 0)
    monkeypatch.setattr(conv_module, "WINOGRAD", False)  # this shape would run Winograd's transforms
    x, w, b = _data(5, 3, 4, 6, 8, 3, 3, seed=20)
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", images_per_chunk * 27 * 48 * x.itemsize)
    monkeypatch.setattr(conv_module, "_KEEP_BYTES", 0)  # too large to keep: recomputed chunk by chunk
    assert len(conv_module._chunks(5, 27 * 48 * x.itemsize)) == -(-5 // images_per_chunk)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    dout = np.random.default_rng(21).standard_normal(want_out.shape)
    out, cache = conv2d_forward(x, w, b, 1, 1, impl="fast")
    assert cache.layout == ("chunks" if backend.get_backend() == "numba" else "wide")
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    for got, want in zip(conv2d_backward(dout, cache), conv2d_backward(dout, want_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    _assert_fused_is_bitwise_unfused(x, w, b, seed=22)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the kept columns are the Numba engine's")
def test_gemm_path_keeps_small_columns_for_one_backward(monkeypatch):
    # a small layer keeps its columns and runs in one chunk (whatever _CHUNK_BYTES says); the
    # backward uses them as its scratch, so the cache hands them over once: a second backward
    # recomputes them and gets the same bits
    monkeypatch.setattr(conv_module, "DIRECT_MAX_K", 0)
    monkeypatch.setattr(conv_module, "WINOGRAD", False)
    x, w, b = _data(5, 3, 4, 6, 8, 3, 3, seed=26)
    monkeypatch.setattr(conv_module, "_CHUNK_BYTES", 2 * 27 * 48 * x.itemsize)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    dout = np.random.default_rng(27).standard_normal(want_out.shape)
    out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
    assert cache.layout == "kept" and cache.cols.cols.shape == (27 * 5 * 48,)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    first = conv2d_backward(dout, cache)
    assert cache.cols.cols is None  # handed over: not held past the backward
    for got, again, want in zip(first, conv2d_backward(dout, cache), conv2d_backward(dout, want_cache)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(again, got)
    # without dx and without bias too
    out, cache = conv2d_forward(x, w, None, 1, 1, impl="numba")
    dx, dw, db = conv2d_backward(dout, cache, need_dx=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, conv2d_backward(dout, want_cache)[1], rtol=1e-12, atol=1e-12)
    _assert_fused_is_bitwise_unfused(x, w, b, seed=28)
