"""All exercises, in the order a learner meets them."""
from __future__ import annotations

from cnnlab.exercises import catalog_challenge, catalog_conv, catalog_layers, catalog_motivation  # noqa: F401  (register)
from cnnlab.exercises._core import REGISTRY, Exercise

ORDER = ("output_size", "convolve2d", "convolve2d_stride_padding", "conv2d_forward", "conv2d_backward", "relu",
         "maxpool", "avgpool", "softmax_ce", "dense", "batchnorm", "sobel", "equivariance", "conv_matrix",
         "challenge")


def names() -> list[str]:
    """Exercise names in teaching order."""
    return [n for n in ORDER if n in REGISTRY] + sorted(set(REGISTRY) - set(ORDER))


def get(name: str) -> Exercise:
    """The exercise called ``name``; ValueError listing the names otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"no exercise named {name!r}; the exercises are: {', '.join(names())}")
    return REGISTRY[name]
