"""Weight initializers: functions ``init(shape, fan_in, fan_out, rng, dtype) -> array``.

``fan_in`` is the number of inputs feeding one output unit (``in_features`` for Dense,
``C_in * KH * KW`` for Conv2d), ``fan_out`` the number of outputs one input feeds.

* ``he_normal`` (Kaiming normal, He et al. 2015): ``N(0, 2 / fan_in)``, keeps the activation
  variance constant through ReLU layers; the tutorials' default.
* ``he_uniform``: ``U(-sqrt(6 / fan_in), sqrt(6 / fan_in))``, the same variance.
* ``glorot_uniform`` (Xavier uniform, Glorot & Bengio 2010; Keras' default):
  ``U(-sqrt(6 / (fan_in + fan_out)), +...)``.
* ``glorot_normal``: ``N(0, 2 / (fan_in + fan_out))``.
* ``zeros``, ``ones``.

Randomness comes only from the explicit ``rng`` (a ``numpy.random.Generator``); global seeds
are never touched. Samples are drawn in float64 and then cast, so the same seed gives the
same weights (up to rounding) in float32 and float64.

Example:
    >>> rng = np.random.default_rng(0)
    >>> w = he_normal((64, 10), fan_in=64, fan_out=10, rng=rng, dtype=np.float32)
    >>> w.shape, w.dtype
    ((64, 10), dtype('float32'))
    >>> get_initializer("glorot_uniform") is glorot_uniform
    True
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from cnnlab.utils.validation import check_positive_int

Initializer = Callable[..., np.ndarray]


def _check(shape, fan_in, fan_out, rng, dtype, *, needs_rng: bool = True) -> tuple[tuple[int, ...], np.dtype]:
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    for n in shape:
        check_positive_int(n, "shape entry", minimum=0)
    if needs_rng:
        check_positive_int(fan_in, "fan_in")
        check_positive_int(fan_out, "fan_out")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(0)); received "
                f"{type(rng).__name__}. cnnlab never uses the global NumPy seed."
            )
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64; received {dtype}.")
    return shape, dtype


def he_normal(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Kaiming/He normal: samples from ``N(0, std**2)`` with ``std = sqrt(2 / fan_in)``."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype)
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype)


def he_uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Kaiming/He uniform: ``U(-limit, limit)`` with ``limit = sqrt(6 / fan_in)``."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype)
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, shape).astype(dtype)


def glorot_uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(shape, fan_in: int, fan_out: int, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, std**2)`` with ``std = sqrt(2 / (fan_in + fan_out))``."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype)
    return (rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


def zeros(shape, fan_in: int | None = None, fan_out: int | None = None, rng=None, dtype=np.float32) -> np.ndarray:
    """All zeros (the usual bias initializer); ``fan_in``, ``fan_out`` and ``rng`` are ignored."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype, needs_rng=False)
    return np.zeros(shape, dtype=dtype)


def ones(shape, fan_in: int | None = None, fan_out: int | None = None, rng=None, dtype=np.float32) -> np.ndarray:
    """All ones (BatchNorm's gamma); ``fan_in``, ``fan_out`` and ``rng`` are ignored."""
    shape, dtype = _check(shape, fan_in, fan_out, rng, dtype, needs_rng=False)
    return np.ones(shape, dtype=dtype)


#: name -> initializer; PyTorch's names (kaiming_*, xavier_*) are aliases of Keras' (he_*, glorot_*)
INITIALIZERS: dict[str, Initializer] = {
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
    "kaiming_normal": he_normal,
    "kaiming_uniform": he_uniform,
    "xavier_uniform": glorot_uniform,
    "xavier_normal": glorot_normal,
    "zeros": zeros,
    "ones": ones,
}


def initializer_name(init: str | Initializer, owner: str) -> str:
    """The registered name of ``init`` (a name or a registered function), for JSON configs.

    Raises:
        ValueError: ``init`` is a custom function; ``owner`` (e.g. "Dense") names the layer.
    """
    if isinstance(init, str):
        return init
    for name, fn in INITIALIZERS.items():
        if fn is init:
            return name
    raise ValueError(f"{owner}.get_config cannot name the custom initializer {init!r}; JSON configs "
                     f"hold initializer names only ({', '.join(sorted(INITIALIZERS))}).")


def get_initializer(name_or_callable: str | Initializer) -> Initializer:
    """Look an initializer up by name, or return a callable unchanged.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
        TypeError: for anything that is neither a string nor callable.
    """
    if isinstance(name_or_callable, str):
        key = name_or_callable.lower()
        if key not in INITIALIZERS:
            raise ValueError(
                f"unknown initializer {name_or_callable!r}; known initializers: "
                f"{', '.join(sorted(INITIALIZERS))} (or pass a function "
                f"init(shape, fan_in, fan_out, rng, dtype))."
            )
        return INITIALIZERS[key]
    if callable(name_or_callable):
        return name_or_callable
    raise TypeError(
        f"initializer must be a name or a function init(shape, fan_in, fan_out, rng, dtype); "
        f"received {type(name_or_callable).__name__}."
    )
