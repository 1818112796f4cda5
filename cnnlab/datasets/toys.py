"""The tutorials' toy worlds: tiny images a person can read pixel by pixel.

* O versus X: 6x6 images of the letters O and X (a 4x4 glyph with a one-pixel margin),
  shifted by up to one pixel, plus Gaussian noise. A 3x3 filter that finds diagonals
  separates them; the shifts show why convolution (translation equivariance) helps.
* Vertical versus horizontal lines: 8x8 images holding one line at a random row or
  column, of random length, plus noise: the smallest problem an edge filter solves.

Both return channels-first float32 batches ``(N, 1, H, W)`` and int64 labels, in random
order, reproducible from the seed.
"""
from __future__ import annotations

import numpy as np

from cnnlab.utils.validation import check_positive_int, check_real
from cnnlab.utils.rng import as_rng

_O = np.array([[0, 1, 1, 0],
               [1, 0, 0, 1],
               [1, 0, 0, 1],
               [0, 1, 1, 0]], dtype=np.float32)
_X = np.array([[1, 0, 0, 1],
               [0, 1, 1, 0],
               [0, 1, 1, 0],
               [1, 0, 0, 1]], dtype=np.float32)
OX_CLASSES = ("O", "X")
LINES_CLASSES = ("vertical", "horizontal")


def ox_templates() -> np.ndarray:
    """The two clean, centred 6x6 letters, indexed by label: ``[0]`` is O, ``[1]`` is X.

    Shape:
        - output: (2, 6, 6) float32 in {0, 1}

    Example:
        >>> t = ox_templates()
        >>> print("\\n".join("".join("-#"[int(v)] for v in row) for row in t[1]))
        ------
        -#--#-
        --##--
        --##--
        -#--#-
        ------
    """
    t = np.zeros((2, 6, 6), dtype=np.float32)
    t[0, 1:5, 1:5] = _O
    t[1, 1:5, 1:5] = _X
    return t


def ox_dataset(n_per_class: int, seed=0, noise: float = 0.1, *, max_shift: int = 1):
    """Noisy, shifted O and X letters.

    Each sample is one of the two templates (see :func:`ox_templates`) moved by a random
    whole-pixel offset in ``[-max_shift, max_shift]`` along each axis (9 positions for the
    default 1; the glyph always stays whole), plus Gaussian noise of standard deviation
    ``noise`` (0 gives exact {0, 1} images).

    Args:
        n_per_class: samples of each letter.
        seed: int seed or numpy Generator.
        noise: noise standard deviation, >= 0.
        max_shift: 0 (always centred) or 1.

    Returns:
        ``(x, y)``, shuffled: images and labels (0 = O, 1 = X; names in ``OX_CLASSES``).

    Shape:
        - x: (2 * n_per_class, 1, 6, 6) float32
        - y: (2 * n_per_class,) int64

    Example:
        >>> x, y = ox_dataset(3, seed=0, noise=0.0)
        >>> x.shape, sorted(y.tolist()), sorted(set(x.ravel().tolist()))
        ((6, 1, 6, 6), [0, 0, 0, 1, 1, 1], [0.0, 1.0])
    """
    n_per_class = check_positive_int(n_per_class, "n_per_class")
    noise = check_real(noise, "noise", 0)
    max_shift = check_positive_int(max_shift, "max_shift", minimum=0)
    if max_shift > 1:
        raise ValueError(f"max_shift must be 0 or 1 (the glyph has a one-pixel margin); received {max_shift}.")
    rng = as_rng(seed)
    templates = ox_templates()
    offsets = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)]
    # the margin is zero, so rolling by at most one pixel never wraps ink around
    variants = np.stack([np.roll(templates, (dy, dx), axis=(1, 2)) for dy, dx in offsets], axis=1)  # (2, P, 6, 6)
    y = rng.permutation(np.repeat(np.arange(2, dtype=np.int64), n_per_class))  # (2n,)
    pos = rng.integers(0, len(offsets), size=y.shape[0])
    x = variants[y, pos][:, None]  # (2n, 6, 6) -> (2n, 1, 6, 6)
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape).astype(np.float32)
    return x, y


def lines_dataset(n: int, seed=0, size: int = 8, noise: float = 0.1, *, min_length: int = 4):
    """Noisy images holding one vertical or one horizontal line.

    The line (value 1 on a background of 0) lies at a random column (vertical) or row
    (horizontal), has a random length in ``[min_length, size]`` and a random start that
    keeps it inside the image. The two classes are balanced (they differ by at most one)
    and shuffled.

    Args:
        n: number of images, >= 2.
        seed: int seed or numpy Generator.
        size: image height and width, >= 2.
        noise: Gaussian noise standard deviation, >= 0.
        min_length: shortest line, 1 <= min_length <= size.

    Returns:
        ``(x, y)``: images and labels (0 = vertical, 1 = horizontal; ``LINES_CLASSES``).

    Shape:
        - x: (n, 1, size, size) float32
        - y: (n,) int64

    Example:
        >>> x, y = lines_dataset(4, seed=1, noise=0.0)
        >>> x.shape, x.dtype, bool(((x.sum(axis=(1, 2, 3)) >= 4)).all())
        ((4, 1, 8, 8), dtype('float32'), True)
    """
    n = check_positive_int(n, "n", minimum=2)
    size = check_positive_int(size, "size", minimum=2)
    noise = check_real(noise, "noise", 0)
    min_length = check_positive_int(min_length, "min_length")
    if min_length > size:
        raise ValueError(f"min_length must be <= size ({size}); received {min_length}.")
    rng = as_rng(seed)
    y = rng.permutation(np.arange(n, dtype=np.int64) % 2)  # (n,) balanced labels
    where = rng.integers(0, size, size=n)  # column of a vertical line, row of a horizontal one
    length = rng.integers(min_length, size + 1, size=n)
    start = rng.integers(0, size - length + 1)  # broadcast high: a start that keeps it inside
    along = np.arange(size)
    on = (along >= start[:, None]) & (along < (start + length)[:, None])  # (n, size): pixels of the line
    vertical = on[:, :, None] & (along[None, None, :] == where[:, None, None])  # (n, rows, cols)
    x = np.where((y == 0)[:, None, None], vertical, vertical.transpose(0, 2, 1))  # (n, size, size)
    x = x.astype(np.float32)[:, None]  # (n, 1, size, size)
    if noise > 0:
        x = x + rng.normal(0.0, noise, size=x.shape).astype(np.float32)
    return x, y
