"""How many decimals a figure needs so that different numbers never print alike."""
from __future__ import annotations

import numpy as np

__all__ = ["decimals_for", "number_format"]


def decimals_for(values, *, least: int = 1, most: int = 4) -> int:
    """The fewest decimals (``least`` .. ``most``) that keep distinct values distinct in print.

    Example:
        >>> decimals_for([2.59, 2.62, 0.0])  # 1 decimal would print both as 2.6
        2
        >>> decimals_for([6.0, 8.0, 9.0, 11.0], least=0)
        0
    """
    v = np.unique(np.asarray(values, dtype=np.float64).ravel())
    v = v[np.isfinite(v)]
    for d in range(least, most + 1):
        if np.unique(np.round(v, d)).size == v.size:
            return d
    return most


def number_format(values, *, least: int = 1, most: int = 4) -> str:
    """A ``str.format`` pattern with :func:`decimals_for` decimals, e.g. ``"{:.2f}"``."""
    return f"{{:.{decimals_for(values, least=least, most=most)}f}}"
