"""Preprocessing helpers, checked against hand computations and loop oracles."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.datasets.preprocessing import (
    add_channel_axis,
    batches,
    one_hot,
    random_shift,
    standardize,
    to_float,
    train_val_split,
)


# ----- to_float -----------------------------------------------------------------------------
def test_to_float_scales_uint8_to_unit_interval():
    x = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = to_float(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_array_equal(out, np.arange(256, dtype=np.float32).reshape(16, 16) / np.float32(255))
    assert out.min() == 0.0 and out.max() == 1.0
    assert to_float(x, dtype=np.float64)[3, 3] == 0.2  # 51 / 255, exactly in float64
    np.testing.assert_array_equal(to_float(np.array([2.0, 4.0]), scale=4.0), [0.5, 1.0])
    assert x[0, 1] == 1  # input untouched


def test_to_float_errors():
    with pytest.raises(TypeError, match="numpy.ndarray"):
        to_float([1, 2])
    with pytest.raises(TypeError, match="integer or floating"):
        to_float(np.array(["a"]))
    with pytest.raises(ValueError, match="scale"):
        to_float(np.zeros(2, np.uint8), scale=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        to_float(np.zeros(2, np.uint8), dtype=np.int32)


# ----- standardize --------------------------------------------------------------------------
def test_standardize_computes_and_reuses_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 1, 4, 4))
    z, mean, std = standardize(train)
    assert mean == pytest.approx(train.mean(), abs=1e-12) and std == pytest.approx(train.std(), abs=1e-12)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    test = rng.normal(3.0, 2.0, size=(5, 1, 4, 4))
    z_test, m2, s2 = standardize(test, mean, std)
    np.testing.assert_allclose(z_test, (test - mean) / std, rtol=1e-14)
    assert (m2, s2) == (mean, std)


def test_standardize_keeps_float32_and_accepts_per_channel_stats():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)  # (1, 3, 1, 1)
    std = x.std(axis=(0, 2, 3), keepdims=True)
    z, _, _ = standardize(x, mean, std)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-6)


def test_standardize_errors():
    with pytest.raises(ValueError, match="std must be > 0.*constant input"):
        standardize(np.ones((3, 3)))
    with pytest.raises(TypeError, match="floating-point"):
        standardize(np.arange(4))
    with pytest.raises(ValueError, match="does not broadcast"):
        standardize(np.ones((2, 3)), mean=np.zeros(4), std=1.0)
    with pytest.raises(ValueError, match="finite"):
        standardize(np.ones(3), mean=np.nan, std=1.0)


# ----- add_channel_axis / one_hot -----------------------------------------------------------
def test_add_channel_axis():
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    out = add_channel_axis(x)
    assert out.shape == (2, 1, 3, 4) and np.shares_memory(out, x)
    np.testing.assert_array_equal(out[:, 0], x)
    with pytest.raises(ValueError, match="already has 4.*transpose\\(0, 3, 1, 2\\)"):
        add_channel_axis(np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match="x\\[None, None\\]"):
        add_channel_axis(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="expected \\(N, H, W\\)"):
        add_channel_axis(np.zeros(3))


def test_one_hot():
    out = one_hot(np.array([2, 0, 1, 2], dtype=np.uint8), 3)
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert out.dtype == np.float32
    assert one_hot(np.array([1]), 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="in \\[0, 2\\]"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(TypeError, match="integer class indices"):
        one_hot(np.array([0.0, 1.0]), 3)
    with pytest.raises(ValueError, match="shape \\(N,\\)"):
        one_hot(np.zeros((2, 2), int), 3)
    with pytest.raises(ValueError, match="num_classes must be >= 1"):
        one_hot(np.array([0]), 0)


# ----- train_val_split ----------------------------------------------------------------------
def test_train_val_split_partitions_and_keeps_pairs():
    y = np.arange(1000) % 7
    x = np.arange(1000) * 10  # x identifies the sample, so pairing can be checked
    (xt, yt), (xv, yv) = train_val_split(x, y, 0.2, rng=3)
    assert len(xt) == 800 and len(xv) == 200
    np.testing.assert_array_equal(yt, (xt // 10) % 7)
    np.testing.assert_array_equal(yv, (xv // 10) % 7)
    assert sorted(np.concatenate([xt, xv]).tolist()) == x.tolist()  # disjoint and complete
    assert np.all(np.diff(xt) > 0) and np.all(np.diff(xv) > 0)  # original order kept
    (xt2, _), (xv2, _) = train_val_split(x, y, 0.2, rng=3)
    np.testing.assert_array_equal(xv, xv2)
    (_, _), (xv3, _) = train_val_split(x, y, 0.2, rng=4)
    assert not np.array_equal(xv, xv3)


def test_train_val_split_stratified():
    y = np.repeat([0, 1, 2], [100, 50, 30])
    x = np.arange(len(y))[:, None] * np.ones((1, 3))  # (180, 3): any trailing shape works
    (xt, yt), (xv, yv) = train_val_split(x, y, 0.2, rng=np.random.default_rng(0), stratify=True)
    assert np.bincount(yv).tolist() == [20, 10, 6]
    assert np.bincount(yt).tolist() == [80, 40, 24]
    assert xt.shape == (144, 3)
    np.testing.assert_array_equal(y[xv[:, 0].astype(int)], yv)


def test_train_val_split_errors():
    x, y = np.zeros(10), np.zeros(10, int)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(x, y, bad)
    with pytest.raises(ValueError, match="same number of samples"):
        train_val_split(x, np.zeros(9, int), 0.1)
    with pytest.raises(ValueError, match="at least 2"):
        train_val_split(np.zeros(1), np.zeros(1, int), 0.5)
    with pytest.raises(ValueError, match="stratified split.*0 of 10"):
        train_val_split(x, y, 0.01, stratify=True)


# ----- random_shift -------------------------------------------------------------------------
def _shift_loop(img, dy, dx):
    """Oracle: out[i, j] = img[i - dy, j - dx], zero outside, one image (C, H, W)."""
    C, H, W = img.shape
    out = np.zeros_like(img)
    for i in range(H):
        for j in range(W):
            if 0 <= i - dy < H and 0 <= j - dx < W:
                out[:, i, j] = img[:, i - dy, j - dx]
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_random_shift_matches_loop_oracle(dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(1, 200, size=(300, 2, 5, 6)).astype(dtype)
    out, shifts = random_shift(x, 2, rng=1, return_shifts=True)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert shifts.shape == (300, 2) and shifts.min() == -2 and shifts.max() == 2
    assert len({tuple(s) for s in shifts}) == 25  # every offset occurs
    for n in range(len(x)):
        np.testing.assert_array_equal(out[n], _shift_loop(x[n], *shifts[n]))
    np.testing.assert_array_equal(random_shift(x, 2, rng=1), out)  # same seed, same result
    assert x.min() >= 1  # input untouched


def test_random_shift_zero_is_a_copy():
    x = np.random.default_rng(0).random((3, 1, 4, 4))
    out = random_shift(x, 0, rng=0)
    np.testing.assert_array_equal(out, x)
    assert not np.shares_memory(out, x)


def test_random_shift_errors():
    with pytest.raises(ValueError, match="add_channel_axis"):
        random_shift(np.zeros((2, 5, 5)), 1)
    with pytest.raises(ValueError, match="smaller than the image size"):
        random_shift(np.zeros((2, 1, 5, 3)), 3)
    with pytest.raises(ValueError, match="max_shift must be >= 0"):
        random_shift(np.zeros((2, 1, 5, 5)), -1)
    with pytest.raises(TypeError, match="max_shift must be an int"):
        random_shift(np.zeros((2, 1, 5, 5)), 1.5)


# ----- batches ------------------------------------------------------------------------------
def test_batches_in_order_and_shuffled():
    assert [b.tolist() for b in batches(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in batches(7, 3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    shuffled = list(batches(100, 32, rng=0))
    assert [len(b) for b in shuffled] == [32, 32, 32, 4]
    flat = np.concatenate(shuffled)
    assert sorted(flat.tolist()) == list(range(100)) and flat.tolist() != list(range(100))
    np.testing.assert_array_equal(np.concatenate(list(batches(100, 32, rng=0))), flat)
    assert [len(b) for b in batches(4, 10)] == [4]
    assert list(batches(4, 10, drop_last=True)) == []


def test_batches_checks_arguments_at_call_time():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        batches(10, 0)  # no iteration needed to see the error
    with pytest.raises(ValueError, match="n must be >= 1"):
        batches(0, 2)
    with pytest.raises(TypeError, match="rng must be"):
        batches(10, 2, rng="seed")
