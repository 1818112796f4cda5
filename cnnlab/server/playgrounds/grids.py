"""Reading the playgrounds' grids (images, kernels, gradients) from a request's JSON."""
from __future__ import annotations

from numbers import Real

import numpy as np

from cnnlab.server.validation import BadRequest

MAX_SIDE = 32  # grids the page can draw cell by cell
MAX_VALUE = 1e4


def get_grid(data: dict, name: str, max_side: int = MAX_SIDE, max_channels: int = 3) -> np.ndarray:
    """Field ``name``: a (C, H, W) or (H, W) nested list of finite numbers -> float64 (C, H, W)."""
    value = data.get(name)
    if value is None:
        raise BadRequest(f"missing field {name!r} (a grid: list of rows of numbers)")
    try:
        arr = np.asarray(value, dtype=object)
    except ValueError:
        arr = None
    if arr is None or arr.ndim not in (2, 3) or arr.size == 0:
        raise BadRequest(f"{name} must be a rectangular grid (rows of numbers, or channels of rows); received {value!r:.80}")
    flat = arr.reshape(-1)
    for v in flat:
        if isinstance(v, bool) or not isinstance(v, Real) or not np.isfinite(v) or abs(v) > MAX_VALUE:
            raise BadRequest(f"{name} must hold finite numbers with |v| <= {MAX_VALUE:g}; received {v!r}")
    grid = arr.astype(np.float64)
    if grid.ndim == 2:
        grid = grid[None]
    C, H, W = grid.shape
    if C > max_channels or H > max_side or W > max_side:
        raise BadRequest(f"{name} must be at most {max_channels} channels of {max_side}x{max_side}; received {C}x{H}x{W}")
    return grid
