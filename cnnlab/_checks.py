"""Input checks shared by layers, models and data: one place for messages that teach.

Every check raises before any work or state change, with the rule, what was received and,
where possible, the fix. No ``assert``: it vanishes under ``python -O``.
"""
from __future__ import annotations

import os
from numbers import Integral, Real
from pathlib import Path

import numpy as np


def check_array(x, name: str = "input") -> np.ndarray:
    """Return ``x`` if it is a NumPy array, else raise a TypeError naming what was given."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray; received {type(x).__name__}.")
    return x


def check_float_array(x, name: str = "input", dtype=None) -> np.ndarray:
    """Check ``x`` is a floating NumPy array (and of ``dtype`` when given)."""
    check_array(x, name)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array (float32 or float64); received dtype "
            f"{x.dtype}. Convert it first, e.g. x.astype(np.float32) / 255."
        )
    if dtype is not None and x.dtype != np.dtype(dtype):
        raise TypeError(
            f"{name} has dtype {x.dtype} but the layer's parameters are {np.dtype(dtype)}; "
            f"cnnlab never changes dtypes silently: pass x.astype(np.{np.dtype(dtype)}) "
            f"or convert the layer with .astype(np.{x.dtype})."
        )
    if x.size == 0:
        raise ValueError(f"{name} is empty (shape {x.shape}); expected at least one sample.")
    return x


def check_image_batch(x, layer: str, channels: int | None = None, dtype=None) -> np.ndarray:
    """Check ``x`` is a float (N, C, H, W) batch, with ``channels`` channels when given.

    Suggests the NCHW transpose when the last axis looks like the channel axis.
    """
    check_float_array(x, f"{layer} input", dtype)
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3:
            hint = " For a batch of single-channel images (N, H, W) add the channel axis: x[:, None]."
        raise ValueError(
            f"{layer} expected input of shape (N, C, H, W) (4 dimensions); received shape "
            f"{x.shape} ({x.ndim} dimensions).{hint}"
        )
    if channels is not None and x.shape[1] != channels:
        expected = f"(N, {channels}, H, W)"
        hint = ""
        if x.shape[3] == channels:
            hint = " cnnlab is channels-first: try x.transpose(0, 3, 1, 2)."
        raise ValueError(f"{layer} expected input of shape {expected}; received {x.shape}.{hint}")
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Check ``value`` is an int >= ``minimum`` (bools are rejected)."""
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int; received {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; received {value}.")
    return int(value)


def check_real(value, name: str, low=None, high=None, *, low_inclusive=True, high_inclusive=True) -> float:
    """Check ``value`` is a finite real number within the given bounds."""
    if not isinstance(value, Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number; received {value!r} ({type(value).__name__}).")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; received {value}.")
    lo_ok = low is None or (value >= low if low_inclusive else value > low)
    hi_ok = high is None or (value <= high if high_inclusive else value < high)
    if not (lo_ok and hi_ok):
        lo = "" if low is None else ("[" if low_inclusive else "(") + f"{low}"
        hi = "" if high is None else f"{high}" + ("]" if high_inclusive else ")")
        raise ValueError(f"{name} must be in {lo or '(-inf'}, {hi or 'inf)'}; received {value}.")
    return value


def check_labels(y, n_samples: int, n_classes: int, name: str = "labels") -> np.ndarray:
    """Check integer class labels of shape (N,) within [0, n_classes)."""
    check_array(y, name)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"{name} must be integer class indices of shape ({n_samples},); received dtype "
            f"{y.dtype}. Use y.astype(np.int64) (or y.argmax(1) for one-hot labels)."
        )
    if y.shape != (n_samples,):
        raise ValueError(f"{name} must have shape ({n_samples},) to match the inputs; received {y.shape}.")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(
            f"{name} must be in [0, {n_classes - 1}] for {n_classes} classes; received values "
            f"from {y.min()} to {y.max()}."
        )
    return y


def check_writable_folder(path, what: str) -> Path:
    """Check that ``path`` can be created: its folder exists, is a folder, and is writable.

    Args:
        path: the file to be written.
        what: the start of the message, e.g. ``"cannot save to"``.

    Returns:
        ``path`` as a Path.

    Raises:
        FileNotFoundError: the folder does not exist.
        NotADirectoryError: the "folder" is a file.
        PermissionError: the folder is not writable.
        IsADirectoryError: ``path`` itself is a folder.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise FileNotFoundError(f"{what} {path}: folder {folder} does not exist; create it first.")
    if not folder.is_dir():
        raise NotADirectoryError(f"{what} {path}: {folder} is a file, not a folder.")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{what} {path}: folder {folder} is not writable.")
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path}: it is a folder; name a file (e.g. {path / 'model.npz'}).")
    return path
