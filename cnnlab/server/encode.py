"""Arrays as JSON: ``{"shape": [...], "dtype": "float32", "base64": "..."}``.

Base64 little-endian float32 rather than a list of numbers: a simple_cnn Draw response holds
about 85,000 feature-map values, which ``json.dumps`` of floats turns into 1 MB and 30 ms;
base64 is a third of the size and a few hundred microseconds. The page decodes it with
``Float32Array`` (``static/plots.js``).
"""
from __future__ import annotations

import base64
import math

import numpy as np


def array_json(a) -> dict:
    """``a`` as ``{"shape", "dtype": "float32", "base64"}`` (little-endian float32, C order).

    Example:
        >>> array_json(np.array([[1.0, 2.0]]))["shape"]
        [1, 2]
    """
    a = np.ascontiguousarray(a, dtype="<f4")
    return {"shape": list(a.shape), "dtype": "float32", "base64": base64.b64encode(a.tobytes()).decode("ascii")}


def array_from_json(obj: dict) -> np.ndarray:
    """The inverse of :func:`array_json` (for tests and benchmarks)."""
    data = np.frombuffer(base64.b64decode(obj["base64"]), dtype="<f4")
    return data.reshape(obj["shape"])


def num(value) -> float | None:
    """A float for JSON: None for NaN or infinity (JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else None
