"""Winograd's F(2x2, 3x3) path of the Numba engine (``cnnlab.engines.winograd``): which layers take
it, and that it computes the convolution (reference loops, a float64 numerical gradient,
PyTorch's autograd), with the fused Conv -> ReLU -> MaxPool giving the plain ops' bits."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.engines import conv2d_backward, conv2d_forward, conv2d_relu_maxpool2d_backward
from cnnlab.engines import conv2d_relu_maxpool2d_forward, winograd
from cnnlab.engines import numba_conv as conv_module
from cnnlab.engines import runtime as backend
from cnnlab.ops.activation import relu_backward, relu_forward
from cnnlab.ops.pool import maxpool2d_backward, maxpool2d_forward
from cnnlab.testing import numerical_gradient, rel_error

pytestmark = pytest.mark.skipif(not backend.HAVE_NUMBA, reason="the Winograd path is the Numba engine's")


@pytest.fixture(autouse=True)
def few_channels_suffice(monkeypatch, request):
    # small shapes keep the tests fast: let a few input channels take the path (the real
    # threshold is tested on its own)
    if "real_threshold" not in request.keywords:
        monkeypatch.setattr(winograd, "MIN_CHANNELS", 4)

SHAPES = [  # (N, C, F, H, W): even maps, 3x3 filters, stride 1, padding 1, C > 3 (else the direct loops)
    (2, 4, 4, 6, 8),
    (1, 5, 2, 2, 2),  # a single tile: every input value is padding-adjacent
    (3, 6, 6, 10, 4),
]


def _data(N, C, F, H, W, dtype=np.float64, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.real_threshold
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, expected", [
    ((16, 64, 32, 32), (64, 64, 3, 3), (1, 1), (1, 1), True),  # the RGB block's 64->64
    ((64, 32, 14, 14), (64, 32, 3, 3), (1, 1), (1, 1), False),  # simple_cnn's conv2: too few channels
    ((64, 16, 14, 14), (32, 16, 3, 3), (1, 1), (1, 1), False),  # bn_cnn's 16->32: the GEMMs are faster
    ((64, 64, 7, 7), (64, 64, 3, 3), (1, 1), (1, 1), False),  # odd map: tiles would not cover it
    ((64, 64, 14, 14), (64, 64, 3, 3), (2, 2), (1, 1), False),
    ((64, 64, 14, 14), (64, 64, 3, 3), (1, 1), (0, 0), False),
    ((64, 64, 14, 14), (64, 64, 5, 5), (1, 1), (2, 2), False),
    ((16, 64, 224, 224), (64, 64, 3, 3), (1, 1), (1, 1), True),  # in chunks of images
])
def test_which_layers_take_the_winograd_path(x_shape, w_shape, stride, padding, expected):
    assert winograd.applies(x_shape, w_shape, stride, padding) is expected


def test_filter_transform_and_gradient_are_transposes():
    # <T(w), dU> == <w, T^T(dU)>: the backward's filter gradient is the forward's exact adjoint
    rng = np.random.default_rng(1)
    w, dU = rng.standard_normal((3, 2, 3, 3)), rng.standard_normal((16, 3, 2))
    U = winograd.filter_transform(w)
    assert U.shape == (16, 3, 2)
    np.testing.assert_allclose(U[0], w[:, :, 0, 0])  # (G g G^T)[0, 0] = g[0, 0]
    np.testing.assert_allclose(U[5], w.sum(axis=(2, 3)) / 4)  # row and column 1 of G: halves of every tap
    assert np.isclose((U * dU).sum(), (w * winograd.filter_gradient(dU)).sum(), rtol=1e-13)


@pytest.mark.parametrize("N, C, F, H, W", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_winograd_matches_the_reference_loops(N, C, F, H, W, bias):
    x, w, b = _data(N, C, F, H, W, seed=2, bias=bias)
    with backend.backend("numba"):
        out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
        assert cache.layout == "winograd"
        dout = np.random.default_rng(3).standard_normal(out.shape)
        got = conv2d_backward(dout, cache)
        again = conv2d_backward(dout, cache)  # the kept transform was handed over: computed again
        no_dx = conv2d_backward(dout, cache, need_dx=False)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    want = conv2d_backward(dout, want_cache)
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    for g, a, t in zip(got, again, want):
        if t is None:
            assert g is None and a is None
            continue
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(a, g)
    assert no_dx[0] is None
    np.testing.assert_array_equal(no_dx[1], got[1])


def test_winograd_gradients_match_the_numerical_gradient():
    x, w, b = _data(2, 4, 2, 4, 6, seed=4)
    dout = np.random.default_rng(5).standard_normal((2, 2, 4, 6))

    def loss():
        with backend.backend("numba"):
            return float((conv2d_forward(x, w, b, 1, 1, impl="numba")[0] * dout).sum())

    with backend.backend("numba"):
        out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
        assert cache.layout == "winograd"
        dx, dw, db = conv2d_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(loss, x)) <= 1e-7
    assert rel_error(dw, numerical_gradient(loss, w)) <= 1e-7
    assert rel_error(db, numerical_gradient(loss, b)) <= 1e-7


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_winograd_matches_pytorch_autograd(dtype, tol):
    x, w, b = _data(4, 8, 6, 12, 10, dtype=dtype, seed=6)
    dout = np.random.default_rng(7).standard_normal((4, 6, 12, 10)).astype(dtype)
    with backend.backend("numba"):
        out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
        dx, dw, db = conv2d_backward(dout, cache)
    assert cache.layout == "winograd" and out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ot = TF.conv2d(xt, wt, bt, padding=1)
    ot.backward(torch.from_numpy(dout))
    for got, want in [(out, ot), (dx, xt.grad), (dw, wt.grad), (db, bt.grad)]:
        assert rel_error(got, want.detach().numpy()) <= tol


@pytest.mark.parametrize("pool", [2, (2, 5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_winograd_gives_the_plain_ops_bits(pool, dtype):
    # bias, ReLU and 2x2 pooling inside the output transform (other windows: the plain ops), and
    # the gradient of the pooled block transformed without writing the full-size gradient
    x, w, b = _data(3, 4, 5, 6, 10, dtype=dtype, seed=8)
    x[0, :, :2] = 0  # flat zero regions: tied windows and ReLU kinks
    with backend.backend("numba"):
        pooled, cache = conv2d_relu_maxpool2d_forward(x, w, b, 1, 1, pool)
        assert cache.conv.layout == "winograd"
        dp = np.random.default_rng(9).standard_normal(pooled.shape).astype(dtype)
        grads = conv2d_relu_maxpool2d_backward(dp, cache)
        out, cc = conv2d_forward(x, w, b, 1, 1)
        act, mask = relu_forward(out)
        want_pooled, pc = maxpool2d_forward(act, pool)
        want = conv2d_backward(relu_backward(maxpool2d_backward(dp, pc), mask), cc)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(cache.argmax, pc.argmax)
    for got, exp in zip(grads, want):
        np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("images_per_chunk", [1, 2])
def test_winograd_in_chunks_of_images(images_per_chunk, monkeypatch):
    # a batch too large for one chunk runs a few images at a time (uneven last chunk here) and
    # transforms each chunk's input again in the backward: same numbers, fused still the plain bits
    x, w, b = _data(5, 4, 3, 6, 8, seed=11)
    per_image = 16 * (4 + 3) * 12 * x.itemsize
    monkeypatch.setattr(winograd, "CHUNK_BYTES", images_per_chunk * per_image)
    assert len(winograd.chunks(x.shape, 3, x.itemsize)) == -(-5 // images_per_chunk)
    with backend.backend("numba"):
        out, cache = conv2d_forward(x, w, b, 1, 1, impl="numba")
        assert cache.layout == "winograd" and cache.cols is None  # nothing kept: recomputed per chunk
        dout = np.random.default_rng(12).standard_normal(out.shape)
        got = conv2d_backward(dout, cache)
    want_out, want_cache = conv2d_forward(x, w, b, 1, 1, impl="naive")
    np.testing.assert_allclose(out, want_out, rtol=1e-12, atol=1e-12)
    for g, t in zip(got, conv2d_backward(dout, want_cache)):
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-12)
    test_fused_winograd_gives_the_plain_ops_bits(2, np.float64)


def test_the_flag_turns_winograd_off(monkeypatch):
    x, w, b = _data(2, 4, 4, 6, 8, dtype=np.float32, seed=10)
    monkeypatch.setattr(conv_module, "WINOGRAD", False)
    with backend.backend("numba"):
        assert conv2d_forward(x, w, b, 1, 1, impl="numba")[1].layout in ("kept", "chunks")
