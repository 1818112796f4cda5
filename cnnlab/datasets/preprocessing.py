"""Small, checked helpers between raw arrays and a model: scaling, standardizing, the
channel axis, one-hot labels, train/validation split, shift augmentation, batch indices.

All of them check their inputs first and raise errors that say what was expected and what
was received. Randomness is explicit: pass a ``numpy.random.Generator`` or an int seed.

A typical MNIST pipeline::

    (x_train, y_train), (x_test, y_test) = load_mnist()
    x_train = add_channel_axis(to_float(x_train))        # (60000, 1, 28, 28) float32 in [0, 1]
    x_train, mean, std = standardize(x_train)            # statistics of the training set...
    x_test, _, _ = standardize(add_channel_axis(to_float(x_test)), mean, std)  # ...reused
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from cnnlab.utils.validation import check_array, check_float_array, check_labels, check_positive_int, check_real
from cnnlab.utils.rng import as_rng


def to_float(x: np.ndarray, scale: float = 255.0, *, dtype=np.float32) -> np.ndarray:
    """Convert pixel values to floats divided by ``scale`` (uint8 0..255 -> [0, 1]).

    Args:
        x: integer or floating array, any shape.
        scale: divisor, > 0.
        dtype: np.float32 (default) or np.float64.

    Returns:
        A new array of ``dtype``, same shape.

    Example:
        >>> to_float(np.array([0, 51, 255], dtype=np.uint8))
        array([0. , 0.2, 1. ], dtype=float32)
    """
    check_array(x, "to_float input")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"to_float needs an integer or floating array; received dtype {x.dtype}.")
    check_real(scale, "scale", 0, low_inclusive=False)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"to_float dtype must be float32 or float64; received {dtype}.")
    out = x.astype(dtype)
    out /= dtype.type(scale)
    return out


def standardize(x: np.ndarray, mean=None, std=None):
    """Shift and scale to zero mean and unit variance: ``(x - mean) / std``.

    With ``mean``/``std`` None they are computed over the whole of ``x`` (one scalar each,
    in float64): compute them on the training set and pass them again for validation and
    test data. Arrays broadcastable against ``x`` are accepted too (e.g. per-channel
    statistics of shape (1, C, 1, 1)).

    Args:
        x: floating array, any shape (use :func:`to_float` first for images).
        mean: number or array, or None to compute it.
        std: number or array (all > 0), or None to compute it.

    Returns:
        ``(x_standardized, mean, std)``; the result has the dtype of ``x``; a computed
        ``mean``/``std`` is returned as a Python float.

    Example:
        >>> z, m, s = standardize(np.array([1.0, 2.0, 3.0]))
        >>> z.round(4), m, round(s, 4)
        (array([-1.2247,  0.    ,  1.2247]), 2.0, 0.8165)
    """
    check_float_array(x, "standardize input")
    if mean is None:
        mean = float(x.mean(dtype=np.float64))
    if std is None:
        std = float(x.std(dtype=np.float64))
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    for name, v in (("mean", m), ("std", s)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"standardize {name} must be finite; received {v}.")
        try:
            np.broadcast_shapes(v.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"standardize {name} of shape {v.shape} does not broadcast against x of shape {x.shape}."
            ) from None
    if np.any(s <= 0):
        raise ValueError(
            f"standardize std must be > 0; received {std}. A constant input has std 0: "
            f"pass std=1.0 to only subtract the mean."
        )
    out = (x - m.astype(x.dtype)) / s.astype(x.dtype)  # constants cast first: keep x's dtype
    return out, mean, std


def add_channel_axis(x: np.ndarray) -> np.ndarray:
    """Insert the channel axis of a grayscale batch: (N, H, W) -> (N, 1, H, W) (a view).

    Rules: only 3-D input is accepted. A 4-D array already has a channel axis and is
    rejected rather than passed through, so a channels-last (N, H, W, C) batch cannot slip
    by; a 2-D array is a single image or a flattened batch, also rejected with a hint.

    Shape:
        - x: (N, H, W), any dtype
        - output: (N, 1, H, W)

    Example:
        >>> add_channel_axis(np.zeros((5, 28, 28))).shape
        (5, 1, 28, 28)
    """
    check_array(x, "add_channel_axis input")
    if x.ndim == 3:
        return x[:, None]  # (N, H, W) -> (N, 1, H, W)
    if x.ndim == 4:
        raise ValueError(
            f"add_channel_axis expected (N, H, W); received shape {x.shape}, which already has 4 "
            f"dimensions. cnnlab is channels-first (N, C, H, W); for channels-last data use "
            f"x.transpose(0, 3, 1, 2)."
        )
    hint = ""
    if x.ndim == 2:
        hint = " For one (H, W) image use x[None, None]; for flat rows (N, H*W) reshape to (N, H, W) first."
    raise ValueError(f"add_channel_axis expected (N, H, W); received shape {x.shape}.{hint}")


def one_hot(y: np.ndarray, num_classes: int, *, dtype=np.float32) -> np.ndarray:
    """One-hot encode integer labels.

    Shape:
        - y: (N,) integers in [0, num_classes)
        - output: (N, num_classes) of ``dtype``

    Example:
        >>> one_hot(np.array([2, 0]), 3)
        array([[0., 0., 1.],
               [1., 0., 0.]], dtype=float32)
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    check_array(y, "one_hot labels")
    if y.ndim != 1:
        raise ValueError(f"one_hot labels must have shape (N,); received {y.shape}.")
    check_labels(y, y.shape[0], num_classes, "one_hot labels")
    return np.eye(num_classes, dtype=dtype)[y]  # (N, num_classes)


def _check_xy(x, y, who: str) -> int:
    check_array(x, f"{who} x")
    check_array(y, f"{who} y")
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise ValueError(
            f"{who} needs x and y with the same number of samples; received shapes {x.shape} and {y.shape}."
        )
    return len(x)


def train_val_split(x: np.ndarray, y: np.ndarray, val_fraction: float = 0.1, *, rng=None,
                    stratify: bool = False):
    """Split off a random validation set.

    ``round(val_fraction * N)`` samples (at least 1, at most N - 1) go to validation. With
    ``stratify`` the split is made per class (``round(val_fraction * n_c)`` of each class
    ``c``), so both parts keep the class proportions. Both parts keep the original order of
    the samples (indices sorted), so the split is reproducible with an int seed.

    Args:
        x: samples, first axis N.
        y: labels, first axis N.
        val_fraction: in (0, 1).
        rng: numpy Generator, int seed, or None (fresh randomness).
        stratify: split each class separately.

    Returns:
        ``(x_train, y_train), (x_val, y_val)`` (copies).

    Example:
        >>> (xt, yt), (xv, yv) = train_val_split(np.arange(10), np.arange(10), 0.2, rng=0)
        >>> len(xt), len(xv), sorted(np.concatenate([xt, xv]).tolist()) == list(range(10))
        (8, 2, True)
    """
    n = _check_xy(x, y, "train_val_split")
    check_real(val_fraction, "val_fraction", 0, 1, low_inclusive=False, high_inclusive=False)
    if n < 2:
        raise ValueError(f"train_val_split needs at least 2 samples; received {n}.")
    gen = as_rng(rng)
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"stratified train_val_split needs labels of shape (N,); received {y.shape}.")
        _, inverse = np.unique(y, return_inverse=True)
        val_parts = []
        for c in range(inverse.max() + 1):
            members = gen.permutation(np.flatnonzero(inverse == c))
            val_parts.append(members[: round(val_fraction * len(members))])
        val_idx = np.sort(np.concatenate(val_parts))
        if not 0 < len(val_idx) < n:
            raise ValueError(
                f"stratified split with val_fraction={val_fraction} puts {len(val_idx)} of {n} samples in "
                f"validation; each part needs at least one. Use a larger fraction or stratify=False."
            )
    else:
        n_val = min(max(round(val_fraction * n), 1), n - 1)
        val_idx = np.sort(gen.permutation(n)[:n_val])
    is_val = np.zeros(n, dtype=bool)
    is_val[val_idx] = True
    train_idx = np.flatnonzero(~is_val)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def random_shift(x: np.ndarray, max_shift: int = 2, rng=None, *, return_shifts: bool = False):
    """Shift each image by its own random whole-pixel offset, filling with zeros.

    Offsets ``(dy, dx)`` are drawn uniformly from ``[-max_shift, max_shift]``; positive
    ``dy`` moves the content down, positive ``dx`` to the right:
    ``out[n, c, i, j] = x[n, c, i - dy, j - dx]`` (0 where that falls outside). Vectorized:
    one padded copy and one gather with per-sample row and column indices.

    Args:
        x: a batch, any dtype.
        max_shift: int, 0 <= max_shift < min(H, W).
        rng: numpy Generator, int seed, or None (fresh randomness).
        return_shifts: also return the offsets.

    Returns:
        The shifted batch (a new array, same dtype), and the offsets of shape (N, 2) as
        ``(dy, dx)`` rows when ``return_shifts``.

    Shape:
        - x: (N, C, H, W)
        - output: (N, C, H, W)

    Example:
        >>> x = np.zeros((1, 1, 3, 3), np.float32); x[0, 0, 1, 1] = 1
        >>> out, s = random_shift(x, 1, rng=0, return_shifts=True)
        >>> bool(out[0, 0, 1 + s[0, 0], 1 + s[0, 1]] == 1), float(out.sum())
        (True, 1.0)
    """
    check_array(x, "random_shift input")
    if x.ndim != 4:
        hint = " Add the channel axis first: add_channel_axis(x)." if x.ndim == 3 else ""
        raise ValueError(f"random_shift expected a batch of shape (N, C, H, W); received {x.shape}.{hint}")
    N, C, H, W = x.shape
    max_shift = check_positive_int(max_shift, "max_shift", minimum=0)
    if max_shift >= min(H, W):
        raise ValueError(f"max_shift must be smaller than the image size {(H, W)}; received {max_shift}.")
    gen = as_rng(rng)
    s = max_shift
    shifts = gen.integers(-s, s + 1, size=(N, 2))  # (N, 2): (dy, dx) per image
    padded = np.pad(x, ((0, 0), (0, 0), (s, s), (s, s)))  # (N, C, H+2s, W+2s)
    rows = (s - shifts[:, 0])[:, None] + np.arange(H)  # (N, H): padded row read by output row i
    cols = (s - shifts[:, 1])[:, None] + np.arange(W)  # (N, W)
    out = padded[np.arange(N)[:, None, None, None], np.arange(C)[None, :, None, None],
                 rows[:, None, :, None], cols[:, None, None, :]]  # (N, C, H, W)
    return (out, shifts) if return_shifts else out


def batches(n: int, batch_size: int, rng=None, *, drop_last: bool = False) -> Iterator[np.ndarray]:
    """Index arrays that cover ``range(n)`` in batches of ``batch_size``.

    Arguments are checked when ``batches`` is called, not when iteration starts.

    Args:
        n: number of samples, >= 1.
        batch_size: >= 1; the last batch is smaller when it does not divide ``n``.
        rng: None keeps the order 0..n-1; a Generator or int seed shuffles.
        drop_last: skip the final, smaller batch.

    Yields:
        int64 index arrays of shape (batch_size,) (the last may be shorter).

    Example:
        >>> [b.tolist() for b in batches(5, 2)]
        [[0, 1], [2, 3], [4]]
    """
    n = check_positive_int(n, "n")
    batch_size = check_positive_int(batch_size, "batch_size")
    order = np.arange(n) if rng is None else as_rng(rng).permutation(n)
    stop = n - n % batch_size if drop_last else n

    def _gen():
        for start in range(0, stop, batch_size):
            yield order[start : start + batch_size]

    return _gen()
