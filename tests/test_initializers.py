"""Initializers: statistics, exact dtypes, explicit randomness, lookup errors."""
import numpy as np
import pytest

from cnnlab.layers.initializers import (INITIALIZERS, get_initializer, glorot_normal, glorot_uniform, he_normal,
                                 he_uniform, ones, zeros)


def test_he_normal_std_for_large_fan_in():
    w = he_normal((2000, 400), 2000, 400, np.random.default_rng(0), np.float64)
    assert abs(w.std() / np.sqrt(2 / 2000) - 1) < 0.01  # 800,000 samples: std error ~0.08%
    assert abs(w.mean()) < 3e-4


def test_he_normal_conv_shaped_fan_in():
    # conv weight (C_out, C_in, KH, KW): fan_in = C_in * KH * KW
    w = he_normal((64, 32, 3, 3), 32 * 9, 64 * 9, np.random.default_rng(1))
    assert abs(w.std() / np.sqrt(2 / 288) - 1) < 0.02


def test_uniform_initializers_limits_and_std():
    rng = np.random.default_rng(2)
    g = glorot_uniform((600, 400), 600, 400, rng, np.float64)
    limit = np.sqrt(6 / 1000)
    assert np.abs(g).max() <= limit and np.abs(g).max() > 0.99 * limit
    assert abs(g.std() / (limit / np.sqrt(3)) - 1) < 0.01
    h = he_uniform((600, 400), 600, 400, rng, np.float64)
    assert abs(h.std() / np.sqrt(2 / 600) - 1) < 0.01 and np.abs(h).max() <= np.sqrt(6 / 600)
    n = glorot_normal((600, 400), 600, 400, rng, np.float64)
    assert abs(n.std() / np.sqrt(2 / 1000) - 1) < 0.01


@pytest.mark.parametrize("init", [he_normal, he_uniform, glorot_uniform, glorot_normal, zeros, ones])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exact_dtype_and_shape(init, dtype):
    w = init((3, 4), 3, 4, np.random.default_rng(0), dtype)
    assert w.dtype == np.dtype(dtype) and w.shape == (3, 4)


def test_zeros_ones_values():
    assert zeros(3).tolist() == [0.0] * 3 and zeros(3).dtype == np.float32
    assert ones((2,), dtype=np.float64).tolist() == [1.0, 1.0]


def test_same_seed_same_weights_and_dtypes_agree():
    a = he_normal((5, 6), 5, 6, np.random.default_rng(3), np.float32)
    b = he_normal((5, 6), 5, 6, np.random.default_rng(3), np.float32)
    c = he_normal((5, 6), 5, 6, np.random.default_rng(3), np.float64)
    assert np.array_equal(a, b)
    assert np.array_equal(a, c.astype(np.float32))


def test_global_numpy_seed_untouched():
    state = np.random.get_state()[1].copy()
    he_normal((10, 10), 10, 10, np.random.default_rng(0))
    glorot_uniform((10, 10), 10, 10, np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], state)


def test_get_initializer():
    assert get_initializer("he_normal") is he_normal
    assert get_initializer("Kaiming_Normal") is he_normal
    assert get_initializer("xavier_uniform") is glorot_uniform
    custom = lambda shape, fan_in, fan_out, rng, dtype: np.zeros(shape, dtype)  # noqa: E731
    assert get_initializer(custom) is custom
    assert set(INITIALIZERS) >= {"he_normal", "glorot_uniform", "zeros", "ones"}


def test_errors():
    with pytest.raises(ValueError, match=r"unknown initializer 'gaussian'; known initializers: glorot_normal, "
                                         r"glorot_uniform, he_normal, he_uniform"):
        get_initializer("gaussian")
    with pytest.raises(TypeError, match=r"initializer must be a name or a function.*received int"):
        get_initializer(3)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator .*received int"):
        he_normal((2, 2), 2, 2, 0)
    with pytest.raises(ValueError, match=r"fan_in must be >= 1; received 0"):
        glorot_uniform((2, 2), 0, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dtype must be float32 or float64; received int64"):
        he_normal((2, 2), 2, 2, np.random.default_rng(0), np.int64)
