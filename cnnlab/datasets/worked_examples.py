"""The tutorials' worked examples, as arrays: the inputs their hand calculations use.

The playgrounds, demos and figures start from these so a learner sees the numbers the
tutorials print (30 at the 7x7 edge, the 4x4 max pool's [[6, 8], [9, 11]], ...). Each is a
fresh float64 array (callers may edit it).

Example:
    >>> edge_image()[0].tolist()
    [10.0, 10.0, 10.0, 0.0, 0.0, 0.0, 0.0]
    >>> pool_example()[0].tolist()
    [1.0, 3.0, 2.0, 4.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["edge_image", "letter_o", "letter_x", "checkerboard", "square", "pool_example", "pool_upstream",
           "OX_FILTER", "OX_BIAS", "TUTORIAL_DIAGONAL", "POOL_EXAMPLE_ERRATUM"]

#: The O-versus-X tutorial's one hand-set 3x3 filter (a ring of ones) and its bias.
OX_FILTER = ((1, 1, 1), (1, 0, 1), (1, 1, 1))
OX_BIAS = -2.0

#: The kernel-zoo tutorial's diagonal edge detector (zero on the anti-diagonal, 2 / -2 corners).
TUTORIAL_DIAGONAL = ((2, 1, 0), (1, 0, -1), (0, -1, -2))

#: What one tutorial prints for the 4x4 max pool, and what max pooling actually gives.
POOL_EXAMPLE_ERRATUM = {"printed": ((3, 4), (9, 11)), "correct": ((6, 8), (9, 11))}


def edge_image() -> np.ndarray:
    """The 7x7 vertical-edge image: three columns of 10, four of 0. Shape (7, 7).

    With the vertical-edge kernel ``[[1, 0, -1]] * 3`` (valid, stride 1) every output row is
    ``[0, 30, 30, 0, 0]``: the filter answers only where its window straddles the edge.
    """
    image = np.zeros((7, 7))
    image[:, :3] = 10
    return image


def letter_o() -> np.ndarray:
    """The O of the O-versus-X tutorial: a 6x6 ring of ones (corners off). Shape (6, 6)."""
    o = np.zeros((6, 6))
    o[0, 1:5] = o[5, 1:5] = o[1:5, 0] = o[1:5, 5] = 1
    return o


def letter_x() -> np.ndarray:
    """The X of the O-versus-X tutorial: both diagonals of a 6x6 grid. Shape (6, 6)."""
    return np.maximum(np.eye(6), np.fliplr(np.eye(6)))


def checkerboard(size: int = 8) -> np.ndarray:
    """``(row + col) % 2``: the Sobel exercise's checkerboard of single pixels. Shape (size, size)."""
    rows, cols = np.indices((size, size))
    return ((rows + cols) % 2).astype(np.float64)


def square(size: int = 10, side: int = 4) -> np.ndarray:
    """A bright ``side`` x ``side`` square centred on a dark ``size`` x ``size`` field: edges on all four sides."""
    image = np.zeros((size, size))
    start = (size - side) // 2
    image[start:start + side, start:start + side] = 1
    return image


def pool_example() -> np.ndarray:
    """The 4x4 input of the tutorials' max-pool example. Shape (4, 4).

    2x2 max pooling with stride 2 gives ``[[6, 8], [9, 11]]`` (see ``POOL_EXAMPLE_ERRATUM``).
    """
    return np.array([[1, 3, 2, 4], [5, 6, 7, 8], [9, 2, 1, 3], [4, 5, 11, 2]], dtype=np.float64)


def pool_upstream() -> np.ndarray:
    """The upstream gradient of the max-pool example's backward pass. Shape (2, 2)."""
    return np.array([[2, 5], [3, 7]], dtype=np.float64)
