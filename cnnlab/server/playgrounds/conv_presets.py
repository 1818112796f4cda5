"""Playground 1's presets: the tutorials' inputs and kernels, a test digit, and the live model's filters.

Served as ``GET /api/play/conv-presets`` by app.py (not through ``ENDPOINTS``: it reads the live
model, which a ``(request dict) -> dict`` function never sees). The page never holds an example
array of its own: every preset grid comes from here.
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets import worked_examples as we
from cnnlab.lab import filters
from cnnlab.lab.demos import mnist_digit
from cnnlab.layers import Conv2d

MNIST_INDEX = 0  # the first test digit (a 7)
MNIST_CROP = slice(4, 24)  # MNIST digits sit in the central 20x20 box: crop the empty margin


def _rgb_picture() -> np.ndarray:
    """A made-up 8x8 RGB picture: a red square, a green left half, a blue bottom band. Shape (3, 8, 8)."""
    green = np.zeros((8, 8))
    green[:, :4] = 1
    blue = np.zeros((8, 8))
    blue[5:] = 1
    return np.stack([we.square(8, 4), green, blue])


def _mnist_digit() -> dict | None:
    """Test digit ``MNIST_INDEX``, its 20x20 centre, pixels / 255 rounded to 0.1 (short cells). None without MNIST."""
    try:
        digit, label = mnist_digit(MNIST_INDEX)  # (28, 28) in [0, 1]
    except (FileNotFoundError, ValueError):
        return None
    pixels = np.round(digit[MNIST_CROP, MNIST_CROP], 1)  # (20, 20)
    return {"name": f"MNIST test digit {MNIST_INDEX} (a {label}), centre 20x20, pixel/255",
            "image": [pixels.tolist()]}


def input_presets() -> dict:
    """name -> {"name": label, "image": (C, H, W) nested list}."""
    def one(label, image):
        return {"name": label, "image": np.asarray(image, dtype=float).reshape(-1, *np.shape(image)[-2:]).tolist()}
    presets = {"edge": one("7x7 vertical edge (tutorial)", we.edge_image()),
               "letter_o": one("6x6 letter O (tutorial)", we.letter_o()),
               "letter_x": one("6x6 letter X (tutorial)", we.letter_x()),
               "checkerboard": one("8x8 checkerboard", we.checkerboard(8)),
               "square": one("10x10 square", we.square(10, 4))}
    digit = _mnist_digit()
    if digit is not None:
        presets["mnist"] = digit
    presets["rgb"] = one("8x8 RGB picture (3 channels)", _rgb_picture())
    presets["ox_channels"] = one("O and X as 2 channels", np.stack([we.letter_o(), we.letter_x()]))
    return presets


def kernel_presets() -> dict:
    """name -> {"name": label, "kernel": (K, K) nested list}: lab.filters' kernels and the tutorial's diagonal."""
    chosen = [("vertical", "vertical edge", filters.vertical_edge),
              ("horizontal", "horizontal edge", filters.horizontal_edge),
              ("diagonal", "diagonal edge (tutorial)", np.array(we.TUTORIAL_DIAGONAL, dtype=float)),
              ("blur", "box blur", filters.box_blur), ("gaussian", "Gaussian blur", filters.gaussian_blur),
              ("sharpen", "sharpen", filters.sharpen), ("sobel_x", "Sobel x", filters.sobel_x),
              ("sobel_y", "Sobel y", filters.sobel_y), ("identity", "identity", filters.identity)]
    return {key: {"name": label, "kernel": np.asarray(k, dtype=float).tolist()} for key, label, k in chosen}


def learned_filters(model, label: str) -> dict | None:
    """The first Conv2d layer's filters and biases: {"model", "layer", "filters" (F, C_in, KH, KW), "biases" (F,)}."""
    for index, layer in enumerate(model.layers):
        if isinstance(layer, Conv2d):
            w = np.asarray(layer.weight.data, dtype=float)  # (F, C_in, KH, KW)
            b = np.zeros(len(w)) if layer.bias is None else np.asarray(layer.bias.data, dtype=float)  # (F,)
            return {"model": label, "layer": index, "filters": w.tolist(), "biases": b.tolist()}
    return None


def conv_presets(model, label: str) -> dict:
    """Everything the Convolution page offers: input and kernel presets, the live model's first filters."""
    return {"inputs": input_presets(), "kernels": kernel_presets(), "learned": learned_filters(model, label)}
