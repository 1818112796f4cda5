"""Batch-norm op: PyTorch conventions (biased/unbiased variance, momentum), gradients, errors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from cnnlab.engines import runtime as backend
from cnnlab.engines import batchnorm_backward, batchnorm_forward
from cnnlab.testing import numerical_gradient, rel_error

ENGINES = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not backend.HAVE_NUMBA, reason="needs numba"))]


@pytest.fixture(params=ENGINES)
def engine(request):
    """Run the test with each backend: Numba's kernels take training-mode input of rank >= 3."""
    with backend.backend(request.param):
        yield request.param

SHAPES = [(5, 3), (4, 3, 7), (3, 2, 3, 5), (1, 2, 3, 2)]  # the last: batch of 1, 6 values per channel


def inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.standard_normal(shape) * 2.0 + 0.5
    gamma, beta = rng.uniform(0.5, 1.5, c), rng.standard_normal(c)
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_matches_torch(shape, training, engine):
    x, gamma, beta, rm, rv = inputs(shape)
    dout = np.random.default_rng(9).standard_normal(shape)
    originals = [a.copy() for a in (x, gamma, beta, rm, rv)]
    out, new_rm, new_rv, cache = batchnorm_forward(x, gamma, beta, rm, rv, training=training, momentum=0.3, eps=1e-3)
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)

    rmt, rvt = torch.tensor(rm), torch.tensor(rv)
    xt, gt, bt = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    ot = TF.batch_norm(xt, rmt, rvt, gt, bt, training=training, momentum=0.3, eps=1e-3)
    ot.backward(torch.from_numpy(dout))

    assert rel_error(out, ot.detach().numpy()) < 1e-13
    assert rel_error(new_rm, rmt.numpy()) < 1e-14  # torch updates its tensors in place
    assert rel_error(new_rv, rvt.numpy()) < 1e-14
    assert rel_error(dx, xt.grad.numpy()) < 1e-12
    assert rel_error(dgamma, gt.grad.numpy()) < 1e-13
    assert rel_error(dbeta, bt.grad.numpy()) < 1e-14
    for before, after in zip(originals, (x, gamma, beta, rm, rv)):
        assert np.array_equal(before, after)  # pure: inputs never mutated


def test_running_var_uses_unbiased_variance_and_normalization_the_biased_one():
    x = np.array([[1.0], [3.0]])  # mean 2, biased var 1, unbiased var 2
    out, rm, rv, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1),
                                       training=True, momentum=0.5, eps=0.0)
    assert out.ravel().tolist() == [-1.0, 1.0]
    assert rm.tolist() == [1.0] and rv.tolist() == [1.5]  # 0.5*1 + 0.5*2


def test_inference_returns_running_stats_unchanged():
    x, gamma, beta, rm, rv = inputs((4, 3))
    _, new_rm, new_rv, _ = batchnorm_forward(x, gamma, beta, rm, rv, training=False)
    assert new_rm is rm and new_rv is rv


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 3, 2), (1, 2, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_central_differences(shape, training, engine):
    x, gamma, beta, rm, rv = inputs(shape, seed=4)
    g = np.random.default_rng(5).standard_normal(shape)
    _, _, _, cache = batchnorm_forward(x, gamma, beta, rm, rv, training=training)
    dx, dgamma, dbeta = batchnorm_backward(g, cache)

    def loss():
        return float(np.sum(batchnorm_forward(x, gamma, beta, rm, rv, training=training)[0] * g))

    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6
    assert rel_error(dgamma, numerical_gradient(loss, gamma)) < 1e-6
    assert rel_error(dbeta, numerical_gradient(loss, beta)) < 1e-6


@pytest.mark.parametrize("shape", [(1, 4), (1, 4, 1, 1), (1, 4, 1)])
def test_one_value_per_channel_in_training_raises(shape):
    x, gamma, beta, rm, rv = inputs(shape)
    with pytest.raises(ValueError, match=r"more than 1 value per channel; received input of shape \(1, 4"):
        batchnorm_forward(x, gamma, beta, rm, rv, training=True)
    out, *_ = batchnorm_forward(x, gamma, beta, rm, rv, training=False)  # inference is fine
    assert out.shape == shape


@pytest.mark.parametrize("training", [True, False])
def test_float32_preserved(training):
    x, gamma, beta, rm, rv = (a.astype(np.float32) for a in inputs((4, 3, 2, 2)))
    out, new_rm, new_rv, cache = batchnorm_forward(x, gamma, beta, rm, rv, training=training)
    grads = batchnorm_backward(np.ones_like(out), cache)
    assert all(a.dtype == np.float32 for a in (out, new_rm, new_rv, *grads))


def test_explicit_axes_match_default():
    x, gamma, beta, rm, rv = inputs((3, 2, 4, 4))
    a = batchnorm_forward(x, gamma, beta, rm, rv, training=True)
    b = batchnorm_forward(x, gamma, beta, rm, rv, training=True, axes=(0, -2, -1))
    for u, v in zip(a[:3], b[:3]):
        assert np.array_equal(u, v)


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="compares the Numba kernels with NumPy")
@pytest.mark.parametrize("shape", [(64, 16, 28, 28), (7, 5, 3), (3, 4, 1, 1), (2, 3, 5, 7)])
def test_kernels_give_numpys_values_in_float32(shape):
    rng = np.random.default_rng(11)
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    dout = rng.standard_normal(shape).astype(np.float32)
    got = {}
    for name in ("numba", "numpy"):
        with backend.backend(name):
            out, new_rm, new_rv, cache = batchnorm_forward(x, gamma, beta, rm, rv, training=True)
            got[name] = (out, new_rm, new_rv, *batchnorm_backward(dout, cache))
    for a, b in zip(got["numba"], got["numpy"]):
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * float(np.abs(b).max()))


@pytest.mark.skipif(not backend.HAVE_NUMBA, reason="tests the Numba kernels")
def test_kernel_statistics_survive_a_large_offset():
    # float32 values near 1e4 with spread 1e-2: sums of squares without centring lose every digit
    rng = np.random.default_rng(3)
    x64 = 1e4 + 1e-2 * rng.standard_normal((8, 2, 6, 6))
    x = x64.astype(np.float32)
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    with backend.backend("numba"):
        out, rm, rv, _ = batchnorm_forward(x, ones, zeros, zeros, ones, training=True, momentum=1.0, eps=0.0)
    xd = x.astype(np.float64)  # the exact statistics of the float32 values
    want_var = xd.var(axis=(0, 2, 3))
    np.testing.assert_allclose(rv, want_var * 288 / 287, rtol=1e-5)
    np.testing.assert_allclose(rm, xd.mean(axis=(0, 2, 3)), rtol=1e-7)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3), dtype=np.float64), 1.0, rtol=1e-4)
