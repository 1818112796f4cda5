"""Photos of digits for `cnnlab predict`: the background is estimated and removed, not just inverted.

Each photo is built here: a real MNIST test digit (the shipped copy), enlarged, drawn onto
grey or unevenly lit paper with noise and soft shadows, dark on light or light on dark. With
no trained model involved, the property checked is that the preprocessed 28x28 image is
close to what the clean digit itself gives (correlation > 0.8, up to a one-pixel shift).
"""
import numpy as np
import pytest
from PIL import Image

from cnnlab.datasets import load_mnist, to_mnist_like
from cnnlab.datasets.photos import estimate_background, photo_to_mnist

SIDE = 168


@pytest.fixture(scope="module")
def digits():
    _, (x_test, y_test) = load_mnist()
    return x_test[:6], y_test[:6]


def _paper(kind: str, rng) -> np.ndarray:
    """Background brightness (SIDE, SIDE), float."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] / (SIDE - 1)
    if kind == "grey":
        return np.full((SIDE, SIDE), 150.0)
    if kind == "gradient":  # light from one corner
        return 90.0 + 110.0 * (0.6 * cols + 0.4 * rows)
    if kind == "shadow":  # bright paper with a soft shadow over one side
        return 215.0 - 90.0 * np.exp(-((cols - 0.05) ** 2 + (rows - 0.8) ** 2) / 0.25)
    if kind == "dark":  # a blackboard, unevenly lit
        return 45.0 + 30.0 * rows
    raise ValueError(kind)


def _photo(digit: np.ndarray, kind: str, seed: int = 0, noise: float = 10.0) -> np.ndarray:
    """The digit enlarged 4x, off centre, on ``kind`` paper, with Gaussian noise: uint8 (SIDE, SIDE)."""
    rng = np.random.default_rng(seed)
    big = np.asarray(Image.fromarray(digit).resize((112, 112), Image.Resampling.BILINEAR), np.float64) / 255
    ink = np.zeros((SIDE, SIDE))
    ink[20:132, 40:152] = big  # (SIDE, SIDE) in [0, 1]
    paper = _paper(kind, rng)
    if kind == "dark":
        picture = paper + ink * 150.0  # chalk: light ink on dark
    else:
        picture = paper * (1 - 0.75 * ink)  # pen: ink absorbs a share of the light
    return np.clip(picture + rng.normal(0, noise, picture.shape), 0, 255).astype(np.uint8)


def _corr(a, b) -> float:
    return float(np.corrcoef(a.astype(float).ravel(), b.astype(float).ravel())[0, 1])


def _aligned_corr(a, b) -> float:
    """Correlation at the best of the 9 one-pixel alignments: the centre of mass is placed at a
    whole pixel, so a mass centre near x.5 may round either way in the photo and the clean digit."""
    return max(_corr(np.roll(a, (dy, dx), axis=(0, 1)), b) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


@pytest.mark.parametrize("kind", ["grey", "gradient", "shadow", "dark"])
def test_photo_of_a_digit_becomes_the_clean_digit(digits, kind):
    for i, digit in enumerate(digits[0]):
        clean = to_mnist_like(digit)
        photo = _photo(digit, kind, seed=i)
        out, found = photo_to_mnist(photo)
        assert found and out.shape == (28, 28) and out.dtype == np.uint8
        assert _aligned_corr(out, clean) > 0.8, (kind, i, _aligned_corr(out, clean))
        assert out[0].max() == out[-1].max() == out[:, 0].max() == out[:, -1].max() == 0  # black margin
        np.testing.assert_array_equal(to_mnist_like(photo), out)  # what load_image / predict use


def test_grey_paper_is_removed_not_inverted_into_a_box(digits):
    """The reported failure: a noisy 5 on grey became a small digit in a grey box."""
    digit = digits[0][digits[1] == 2][0] if (digits[1] == 2).any() else digits[0][0]
    out, found = photo_to_mnist(_photo(digit, "grey", noise=12.0))
    assert found
    rows, cols = np.nonzero(out > 25)
    assert rows.max() - rows.min() + 1 >= 18 or cols.max() - cols.min() + 1 >= 18  # fills MNIST's 20-px box
    assert np.median(out[out > 0]) > 60  # the ink, not a faint grey box of paper


@pytest.mark.parametrize("kind", ["grey", "gradient", "shadow", "dark"])
def test_blank_paper_has_no_ink(kind):
    paper = np.clip(_paper(kind, None) + np.random.default_rng(1).normal(0, 10, (SIDE, SIDE)), 0, 255)
    out, found = photo_to_mnist(paper.astype(np.uint8))
    assert not found and not out.any()


def test_background_estimate_follows_a_gradient_under_the_ink(digits):
    photo = _photo(digits[0][0], "gradient", noise=0.0).astype(float)
    background, sigma = estimate_background(photo)
    truth = _paper("gradient", None)
    no_ink = np.ones_like(truth, bool)
    no_ink[20:132, 40:152] = False
    assert np.abs(background - truth)[no_ink].max() < 3.0 and sigma < 3.0
