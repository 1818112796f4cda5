"""Playground 6, equivariance: conv(shift x) beside shift(conv x), and what 2x2 max pooling keeps.

The arrays come from :func:`cnnlab.lab.explain.equivariance.translation_equivariance` (cnnlab's
conv with "same" padding, ReLU, 2x2 max pool) for one zero-filled shift; this module adds the
comparisons the page draws: where conv(shift x) and shift(conv x) differ (only in the band the
kernel's half-width reaches from the zero-filled strip and from the edge the content left by),
and whether the pooled map moved by the shift / 2 cells (exactly, for even shifts away from borders).
"""
from __future__ import annotations


import numpy as np

from cnnlab.datasets.worked_examples import edge_image, letter_o, letter_x
from cnnlab.lab.demos import mnist_digit
from cnnlab.lab.explain.equivariance import shift_image, translation_equivariance
from cnnlab.lab.filters import KERNELS
from cnnlab.lab.viz.equivariance import shift_words
from cnnlab.server.validation import check_fields, get_choice, get_int

SIZE = 28  # every input is 28x28 (an MNIST digit's size), so an 8-pixel shift keeps most of it
POOL = 2
DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0), "diagonal": (1, 1)}
PRESETS = ("digit", "O", "X", "edge")
MAX_DIGIT = 99  # the first 100 MNIST test digits


def preset_image(name: str, digit: int = 0) -> np.ndarray:
    """A 28x28 input: an MNIST test digit scaled to [0, 1], or a tutorial example drawn large.

    The 6x6 letters are blown up 3x (18x18) and the 7x7 edge image 4x (bright left half,
    scaled to [0, 1]), each placed on a zero field. Shape (28, 28).
    """
    if name == "digit":
        return mnist_digit(digit)[0]
    if name == "edge":
        return np.kron(edge_image() / 10.0, np.ones((4, 4)))
    small = letter_o() if name == "O" else letter_x()
    image = np.zeros((SIZE, SIZE))
    image[5:23, 5:23] = np.kron(small, np.ones((3, 3)))  # (18, 18) letter, 5 pixels of margin
    return image


def border_band(shape, dy: int, dx: int, half: int) -> np.ndarray:
    """Cells whose conv window (half-width ``half``) reaches the zero-filled strip of a (dy, dx)
    shift or the far edge its content left by: the only places conv(shift x) may differ from
    shift(conv x) (the fill destroyed data there). Shape ``shape``, bool."""
    band = np.zeros(shape, dtype=bool)
    h, w = shape
    if dy > 0:  # filled strip on top, content left by the bottom edge
        band[:dy + half, :] = band[h - half:, :] = True
    if dy < 0:  # moved up: filled strip at the bottom, content left by the top edge
        band[:half, :] = band[h + dy - half:, :] = True
    if dx > 0:
        band[:, :dx + half] = band[:, w - half:] = True
    if dx < 0:
        band[:, :half] = band[:, w + dx - half:] = True
    return band


def _cells(d: int, round_up: bool) -> int:
    """A shift of ``d`` pixels in pooled cells, same sign: rounded toward zero, or away from it."""
    n = -(-abs(d) // POOL) if round_up else abs(d) // POOL
    return n if d >= 0 else -n


def equivariance_play(data: dict) -> dict:
    """One input, one 3x3 kernel, one zero-filled shift of 0-8 pixels.

    Request: ``preset`` digit|O|X|edge, ``digit`` 0-99 (MNIST test index), ``kernel`` a name of
    ``cnnlab.lab.filters.KERNELS``, ``shift`` 0-8, ``direction`` right|left|down|up|diagonal (down-right).
    Returns (all 28x28 unless noted): ``image``, ``shifted``, ``conv`` = conv(x), ``conv_of_shifted``
    = conv(shift x), ``shift_of_conv`` = shift(conv x), ``difference`` (their difference) and the
    ``band`` where it may be nonzero; ``pooled`` = pool(ReLU(conv x)) and ``pooled_of_shifted``
    (14x14), ``pooled_moved`` = pooled shifted by shift // 2 cells and its difference; summary numbers.
    """
    check_fields(data, {"preset", "digit", "kernel", "shift", "direction"})
    preset = get_choice(data, "preset", PRESETS, default="digit")
    digit = get_int(data, "digit", 0, MAX_DIGIT, default=0)
    kernel_name = get_choice(data, "kernel", sorted(KERNELS), default="vertical_edge")
    shift = get_int(data, "shift", 0, 8, default=5)
    direction = get_choice(data, "direction", tuple(DIRECTIONS), default="right")
    dy, dx = (shift * d for d in DIRECTIONS[direction])
    kernel = np.array(KERNELS[kernel_name])  # (3, 3)
    half = kernel.shape[0] // 2

    image = preset_image(preset, digit)
    result = translation_equivariance(image, kernel, shift=(dy, dx), shifts=((dy, dx),), pool_size=POOL)
    shift_of_conv = shift_image(result.fmap, dy, dx)
    difference = result.fmap_shifted - shift_of_conv  # (28, 28): zero outside the band
    band = border_band(difference.shape, dy, dx, half)
    nonzero = np.abs(difference) > 1e-9
    rows, cols = np.nonzero(nonzero)

    pdy, pdx = _cells(dy, False), _cells(dx, False)  # the pooled grid moves by whole cells only
    pooled_moved = shift_image(result.pooled, pdy, pdx)
    pooled_difference = result.pooled_shifted - pooled_moved  # (14, 14)
    pooled_band = border_band(pooled_difference.shape, _cells(dy, True), _cells(dx, True), 1)
    stats = result.per_shift[0]
    return {
        "image": image.tolist(), "shifted": result.shifted.tolist(), "kernel": kernel.tolist(),
        "kernel_name": kernel_name, "shift": [dy, dx], "shift_words": shift_words(dy, dx), "padding": half,
        "conv": result.fmap.tolist(), "conv_of_shifted": result.fmap_shifted.tolist(),
        "shift_of_conv": shift_of_conv.tolist(), "difference": difference.tolist(), "band": band.tolist(),
        "max_abs_difference": float(np.abs(difference).max()),
        "max_abs_difference_outside_band": float(np.abs(difference[~band]).max()) if (~band).any() else 0.0,
        "nonzero_cells": int(nonzero.sum()),
        "nonzero_rows": sorted({int(r) for r in rows}), "nonzero_cols": sorted({int(c) for c in cols}),
        "pooled": result.pooled.tolist(), "pooled_of_shifted": result.pooled_shifted.tolist(),
        "pooled_shift": [pdy, pdx], "pooled_shift_words": shift_words(pdy, pdx).replace("px", "cells"),
        "pooled_moved": pooled_moved.tolist(),
        "pooled_difference": pooled_difference.tolist(),
        "pooled_max_abs_difference": float(np.abs(pooled_difference).max()),
        "pooled_max_abs_difference_inside": float(np.abs(pooled_difference[~pooled_band]).max())
        if (~pooled_band).any() else 0.0,
        "shift_is_multiple_of_stride": dy % POOL == 0 and dx % POOL == 0,
        "conv_unchanged_fraction": stats["conv_unchanged_fraction"],
        "pool_unchanged_fraction": stats["pool_unchanged_fraction"],
        "conv_relative_change": stats["conv_relative_change"],
        "pool_relative_change": stats["pool_relative_change"],
        "kernels": sorted(KERNELS),
    }
