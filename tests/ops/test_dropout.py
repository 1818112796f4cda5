"""Inverted dropout op: identity at inference, mean preserved, fixed-mask gradient, validation."""
import numpy as np
import pytest

from cnnlab.ops.dropout import dropout_backward, dropout_forward
from cnnlab.testing import numerical_gradient, rel_error


def test_identity_at_inference_and_rng_untouched():
    x = np.random.default_rng(0).standard_normal((3, 4))
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    out, cache = dropout_forward(x, 0.5, rng, training=False)
    assert out is x and cache is None
    assert rng.bit_generator.state == state
    assert dropout_backward(x, cache) is x


def test_p_zero_is_identity_in_training():
    x = np.ones((2, 3))
    out, cache = dropout_forward(x, 0.0, np.random.default_rng(0), training=True)
    assert np.array_equal(out, x) and cache is None


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_values_fraction_and_mean_preserved(p):
    x = np.ones((200, 500))
    out, (keep, scale) = dropout_forward(x, p, np.random.default_rng(42), training=True)
    assert set(np.unique(out).tolist()) == {0.0, 1 / (1 - p)}
    # 100,000 Bernoulli draws: std of the kept fraction <= 0.0016; 0.01 is > 6 sigma
    assert abs(keep.mean() - (1 - p)) < 0.01
    assert abs(out.mean() - 1.0) < 0.03  # inverted scaling keeps E[out] = x
    assert keep.dtype == np.bool_


def test_same_seed_same_mask():
    x = np.ones((4, 5))
    a = dropout_forward(x, 0.5, np.random.default_rng(3), True)[0]
    b = dropout_forward(x, 0.5, np.random.default_rng(3), True)[0]
    assert np.array_equal(a, b)


def test_backward_uses_the_same_mask_and_matches_central_differences():
    x = np.random.default_rng(0).standard_normal((3, 7))
    g = np.random.default_rng(1).standard_normal(x.shape)
    out, cache = dropout_forward(x, 0.4, np.random.default_rng(5), True)
    dx = dropout_backward(g, cache)
    keep, scale = cache
    np.testing.assert_allclose(dx, np.where(keep, g / 0.6, 0), rtol=1e-15)
    assert np.array_equal(dx == 0, out == 0)
    loss = lambda: float(np.sum(dropout_forward(x, 0.4, np.random.default_rng(5), True)[0] * g))  # noqa: E731
    assert rel_error(dx, numerical_gradient(loss, x)) < 1e-6


def test_float32_preserved():
    x = np.ones((3, 3), dtype=np.float32)
    out, cache = dropout_forward(x, 0.3, np.random.default_rng(0), True)
    assert out.dtype == np.float32 and dropout_backward(np.ones_like(x), cache).dtype == np.float32


@pytest.mark.parametrize("p, err, msg", [
    (1.0, ValueError, r"must be in \[0.0, 1.0\); received 1.0"),
    (-0.1, ValueError, r"received -0.1"),
    (1.5, ValueError, r"received 1.5"),
    ("0.5", TypeError, r"must be a number; received '0.5'"),
])
def test_invalid_p(p, err, msg):
    with pytest.raises(err, match=msg):
        dropout_forward(np.ones(3), p, np.random.default_rng(0), True)
