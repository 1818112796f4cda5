"""Randomness: every random choice in cnnlab draws from an explicit ``numpy.random.Generator``."""
from __future__ import annotations

import numpy as np

__all__ = ["as_rng"]


def as_rng(rng) -> np.random.Generator:
    """Accept a Generator, an int seed or None (fresh entropy) and return a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None; received {rng!r}.")
