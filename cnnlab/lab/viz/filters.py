"""Kernel gallery: the classic 3x3 kernels of ``cnnlab.lab.filters`` applied to real images.

Every response is computed by ``cnnlab.lab.filters.apply_kernel`` (cnnlab's convolution); the
Sobel magnitude is ``sqrt(gx**2 + gy**2)`` of the two Sobel responses.
"""
from __future__ import annotations

import numpy as np

from cnnlab.lab.filters import KERNELS, apply_kernel, sobel_magnitude
from cnnlab.lab.viz._common import as_2d_image, finish, new_figure, show

__all__ = ["GALLERY", "edge_test_image", "kernel_responses", "kernel_gallery"]


def edge_test_image(size: int = 28) -> np.ndarray:
    """A synthetic image with vertical, horizontal and diagonal edges: a bright square with a
    diagonal stripe, on black.

    Shape:
        returns (size, size) float64 in [0, 1].

    Example:
        >>> img = edge_test_image(28)
        >>> img.shape, float(img.max())
        ((28, 28), 1.0)
    """
    img = np.zeros((size, size))
    a, b = size // 5, size - size // 5
    img[a:b, a:(a + b) // 2] = 1.0  # a rectangle: vertical and horizontal edges
    r, c = np.indices((size, size))
    img[(np.abs((r - c) - size // 8) <= size // 14) & (c > (a + b) // 2)] = 0.6  # a diagonal band
    return img


#: the gallery's kernels, in order (names in ``cnnlab.lab.filters.KERNELS``)
GALLERY = ("vertical_edge", "horizontal_edge", "diagonal_edge_main", "diagonal_edge_anti", "sobel_x", "sobel_y",
           "box_blur", "gaussian_blur", "sharpen")


def _default_kernels() -> dict:
    return {name: KERNELS[name] for name in GALLERY if name in KERNELS}


def kernel_responses(image, kernels: dict | None = None, *, padding: int = 1) -> dict[str, np.ndarray]:
    """Apply every kernel to ``image`` with ``cnnlab.lab.filters.apply_kernel`` (stride 1).

    Args:
        image: 2-D image (uint8 images are scaled to [0, 1]).
        kernels: name -> 2-D kernel; default the :data:`GALLERY` kernels of ``cnnlab.lab.filters``.
        padding: zero padding (1 keeps a 3x3 kernel's output the size of the input).

    Returns:
        name -> 2-D response, plus ``"sobel_magnitude"`` (``cnnlab.lab.filters.sobel_magnitude``)
        when both Sobel kernels are among the kernels.
    """
    kernels = _default_kernels() if kernels is None else kernels
    img = as_2d_image(image)
    out = {name: np.asarray(apply_kernel(img, np.asarray(k, dtype=np.float64), stride=1, padding=padding))
           for name, k in kernels.items()}
    if "sobel_x" in kernels and "sobel_y" in kernels:
        out["sobel_magnitude"] = np.asarray(sobel_magnitude(img, padding=padding))
    return out


def kernel_gallery(images, kernels: dict | None = None, *, padding: int = 1, save=None):
    """A gallery: each kernel's numbers on top, and its response on every image below.

    Args:
        images: one 2-D image or a dict name -> image (e.g. an MNIST digit and
            :func:`edge_test_image`).
        kernels: name -> 2-D kernel; default the :data:`GALLERY` kernels.
        padding: zero padding for ``apply_kernel``.
        save: optional PNG/SVG path.

    Returns:
        the Figure. Signed responses are drawn with a zero-centred diverging map (red
        positive, blue negative), non-negative ones (blurs, the Sobel magnitude) with a
        sequential map from 0; each panel has its own colour bar.
    """
    kernels = dict(_default_kernels() if kernels is None else kernels)
    if not isinstance(images, dict):
        images = {"image": images}
    responses = {name: kernel_responses(img, kernels, padding=padding) for name, img in images.items()}
    columns = list(next(iter(responses.values())).keys())
    n_cols = 1 + len(columns)
    fig = new_figure(2.0 * n_cols + 0.5, 2.1 * (1 + len(images)) + 0.3)
    axes = fig.subplots(1 + len(images), n_cols, squeeze=False)
    axes[0, 0].axis("off")
    axes[0, 0].text(0.5, 0.5, "kernels\n(weights)", ha="center", va="center", fontsize=11, transform=axes[0, 0].transAxes)
    for c, name in enumerate(columns, start=1):
        ax = axes[0, c]
        if name in kernels:
            show(ax, np.asarray(kernels[name], dtype=np.float64), title=name.replace("_", " "), diverging=True,
                 colorbar="weight" if c == 1 else "", numbers="{:.2g}", fontsize=7)
        else:
            ax.axis("off")
            ax.text(0.5, 0.5, "sqrt(sobel_x^2\n+ sobel_y^2)", ha="center", va="center", fontsize=9,
                    transform=ax.transAxes)
            ax.set_title(name.replace("_", " "), fontsize=10)
    for r, (img_name, img) in enumerate(images.items(), start=1):
        show(axes[r, 0], as_2d_image(img), title=img_name, cmap="gray", colorbar=None)
        for c, name in enumerate(columns, start=1):
            resp = responses[img_name][name]
            label = "response" if c in (1, n_cols - 1) else ""
            if resp.min() >= 0:  # blurs and magnitudes of a non-negative image: a sequential map from 0
                show(axes[r, c], resp, cmap="viridis", vmin=0, colorbar=label)
            else:
                show(axes[r, c], resp, diverging=True, colorbar=label)
    return finish(fig, save)
