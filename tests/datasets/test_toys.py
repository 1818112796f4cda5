"""Toy datasets: exact shapes, reproducibility, and classes a simple rule can tell apart."""
from __future__ import annotations

import numpy as np
import pytest

from cnnlab.datasets import toys
from cnnlab.datasets.toys import lines_dataset, ox_dataset, ox_templates


def _shifted_templates():
    """All 9 one-pixel shifts of both templates: (2, 9, 6, 6), by hand with slicing."""
    t = ox_templates()
    out = np.zeros((2, 9, 6, 6), np.float32)
    k = 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            out[:, k, 1 + dy : 5 + dy, 1 + dx : 5 + dx] = t[:, 1:5, 1:5]
            k += 1
    return out


def test_ox_templates():
    t = ox_templates()
    assert t.shape == (2, 6, 6) and t.dtype == np.float32
    assert set(np.unique(t).tolist()) == {0.0, 1.0}
    assert t[0].sum() == 8 and t[1].sum() == 8  # same amount of ink: only the shape differs
    assert t[:, 0].sum() == t[:, -1].sum() == t[:, :, 0].sum() == t[:, :, -1].sum() == 0  # margin
    np.testing.assert_array_equal(t[1], t[1, :, ::-1])  # X is mirror-symmetric...
    np.testing.assert_array_equal(t[1, 1:5, 1:5].diagonal(), 1)  # ...with a full diagonal
    assert t[0, 1:5, 1:5].diagonal().tolist() == [0, 0, 0, 0]  # O has none
    assert toys.OX_CLASSES == ("O", "X")


def test_ox_dataset_clean_images_are_shifted_templates():
    x, y = ox_dataset(60, seed=0, noise=0.0)
    assert x.shape == (120, 1, 6, 6) and x.dtype == np.float32
    assert y.dtype == np.int64 and np.bincount(y).tolist() == [60, 60]
    assert np.any(np.diff(y) < 0)  # shuffled, not all O then all X
    variants = _shifted_templates()  # (2, 9, 6, 6)
    match = (x[:, 0, None] == variants[y]).all(axis=(2, 3))  # (120, 9)
    assert match.any(axis=1).all()  # each image is a shift of its own letter
    assert len(set(match.argmax(axis=1).tolist())) == 9  # and all 9 positions occur
    x0, y0 = ox_dataset(5, seed=0, noise=0.0, max_shift=0)
    np.testing.assert_array_equal(x0[:, 0], ox_templates()[y0])


def test_ox_dataset_reproducible_noisy_and_separable():
    x, y = ox_dataset(200, seed=7, noise=0.1)
    x2, y2 = ox_dataset(200, seed=7, noise=0.1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = ox_dataset(200, seed=np.random.default_rng(8), noise=0.1)
    assert not np.array_equal(x, x3)
    # noise: the residual from the nearest clean variant has the requested spread
    variants = _shifted_templates().reshape(18, 36)  # (2*9, 36)
    d = ((x.reshape(-1, 1, 36) - variants[None]) ** 2).sum(-1)  # (400, 18) squared distances
    nearest = d.argmin(axis=1)
    residual = x.reshape(-1, 36) - variants[nearest]
    assert abs(residual.std() - 0.1) < 0.01
    assert np.mean(nearest // 9 == y) == 1.0  # nearest template recovers every label


def test_lines_dataset_clean_images_hold_one_line():
    x, y = lines_dataset(200, seed=0, noise=0.0)
    assert x.shape == (200, 1, 8, 8) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [100, 100]
    img = x[:, 0]
    rows_used = (img > 0).any(axis=2).sum(axis=1)  # (200,) how many rows hold ink
    cols_used = (img > 0).any(axis=1).sum(axis=1)
    length = img.sum(axis=(1, 2))
    assert np.all((length >= 4) & (length <= 8))
    np.testing.assert_array_equal(cols_used[y == 0], 1)  # vertical: one column...
    np.testing.assert_array_equal(rows_used[y == 0], length[y == 0])  # ...contiguous rows
    np.testing.assert_array_equal(rows_used[y == 1], 1)
    np.testing.assert_array_equal(cols_used[y == 1], length[y == 1])
    assert len(set(length.tolist())) == 5  # lengths 4..8 all occur
    assert len(set(img.argmax(axis=2).max(axis=1)[y == 0].tolist())) == 8  # lines in every column


def test_lines_dataset_reproducible_and_separable():
    x, y = lines_dataset(400, seed=3, noise=0.1)
    x2, y2 = lines_dataset(400, seed=3, noise=0.1)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, lines_dataset(400, seed=4, noise=0.1)[0])
    img = x[:, 0]
    predicted = (img.sum(axis=2).max(axis=1) > img.sum(axis=1).max(axis=1)).astype(int)  # a long row: horizontal
    assert np.mean(predicted == y) >= 0.98
    odd, _ = lines_dataset(7, seed=0, size=5, noise=0.0, min_length=5)
    assert odd.shape == (7, 1, 5, 5) and np.all(odd.sum(axis=(1, 2, 3)) == 5)


@pytest.mark.parametrize("call, error, match", [
    (lambda: ox_dataset(0), ValueError, "n_per_class must be >= 1"),
    (lambda: ox_dataset(3, noise=-0.1), ValueError, "noise"),
    (lambda: ox_dataset(3, max_shift=2), ValueError, "0 or 1"),
    (lambda: ox_dataset(3, seed="x"), TypeError, "rng must be"),
    (lambda: lines_dataset(1), ValueError, "n must be >= 2"),
    (lambda: lines_dataset(10, size=8, min_length=9), ValueError, "min_length must be <= size"),
    (lambda: lines_dataset(10, noise=float("nan")), ValueError, "finite"),
])
def test_toy_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
