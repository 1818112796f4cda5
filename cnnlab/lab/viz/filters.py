"""Kernel gallery: the tutorial's 7x7 edge example with its numbers, then the classic 3x3
kernels of ``cnnlab.lab.filters`` (the tutorial's diagonal among them) applied to real images.

Every response is computed by ``cnnlab.lab.filters.apply_kernel`` (cnnlab's convolution); the
Sobel magnitude is ``sqrt(gx**2 + gy**2)`` of the two Sobel responses.
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import edge_image
from cnnlab.lab.filters import KERNELS, apply_kernel, sobel_magnitude
from cnnlab.lab.viz._common import as_2d_image, finish, new_figure, show
from cnnlab.lab.viz._style import INPUT_CMAP, NONNEGATIVE

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


#: the gallery's kernels, in order (names in ``cnnlab.lab.filters.KERNELS``); ``diagonal_edge`` is the tutorial's
GALLERY = ("vertical_edge", "horizontal_edge", "diagonal_edge", "sobel_x", "sobel_y", "box_blur", "gaussian_blur",
           "sharpen", "laplacian")
KERNEL_FONT = 12  # points: the weights of a kernel panel
CELL_FONT = 9  # points: the numbers of the 7x7 edge example


def _default_kernels() -> dict:
    return {name: KERNELS[name] for name in GALLERY if name in KERNELS}


def kernel_responses(image, kernels: dict | None = None, *, padding: int = 0) -> dict[str, np.ndarray]:
    """Apply every kernel to ``image`` with ``cnnlab.lab.filters.apply_kernel`` (stride 1).

    Args:
        image: 2-D image (uint8 images are scaled to [0, 1]).
        kernels: name -> 2-D kernel; default the :data:`GALLERY` kernels of ``cnnlab.lab.filters``.
        padding: zero padding; the default 0 ("valid") keeps the zero border from answering as
            an edge (a 3x3 kernel makes an H x W image (H-2) x (W-2)).

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


def _edge_example(axes) -> None:
    """The tutorial's numbers: the 7x7 edge (10 | 0), the vertical-edge kernel, every output row 0 30 30 0 0."""
    image, kernel = edge_image(), np.asarray(KERNELS["vertical_edge"])
    show(axes[0], image, title="7x7 edge image\n(white = 0, black = 10)", cmap=INPUT_CMAP, colorbar=None,
         numbers="{:g}", fontsize=CELL_FONT)
    show(axes[1], kernel, title="vertical edge kernel", diverging=True, colorbar=None, numbers="{:g}",
         fontsize=KERNEL_FONT)
    out = apply_kernel(image, kernel)  # (5, 5)
    show(axes[2], out, title="valid output 5x5:\n30 where the window straddles the edge", cmap=NONNEGATIVE,
         vmin=0, colorbar=None, numbers="{:g}", fontsize=CELL_FONT + 1)


def _response(ax, resp: np.ndarray, title: str) -> None:
    if resp.min() >= 0:  # blurs and magnitudes of a non-negative image: a sequential map from 0
        show(ax, resp, title=title, cmap=NONNEGATIVE, vmin=0, colorbar="")
    else:
        show(ax, resp, title=title, diverging=True, colorbar="")


def kernel_gallery(images, kernels: dict | None = None, *, padding: int = 0, save=None):
    """A gallery: the tutorial's 7x7 edge example with its numbers, then each kernel's weights
    beside its response on every image, in two blocks of rows.

    Args:
        images: one 2-D image or a dict name -> image (e.g. an MNIST digit and
            :func:`edge_test_image`).
        kernels: name -> 2-D kernel; default the :data:`GALLERY` kernels.
        padding: zero padding for ``apply_kernel`` (default 0: valid, no border artefact).
        save: optional PNG/SVG path.

    Returns:
        the Figure. Signed responses are drawn with a zero-centred diverging map (red
        positive, blue negative), non-negative ones (blurs, the Sobel magnitude) with a
        sequential map from 0; each response has its own colour bar.
    """
    kernels = dict(_default_kernels() if kernels is None else kernels)
    if not isinstance(images, dict):
        images = {"image": images}
    responses = {name: kernel_responses(img, kernels, padding=padding) for name, img in images.items()}
    names = list(next(iter(responses.values())).keys())
    block = 1 + len(images)  # one kernel: its weights, then its response on each image
    rows = 1 + int(np.ceil(len(names) / 2))
    fig = new_figure(2.25 * 2 * block, 2.0 * rows + 0.4)
    axes = fig.subplots(rows, 2 * block, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    _edge_example(axes[0, :3])
    for c, (img_name, img) in enumerate(images.items(), start=3):
        if c < axes.shape[1]:
            show(axes[0, c], as_2d_image(img), title=f"input: {img_name}", cmap=INPUT_CMAP, colorbar=None)
    for n, name in enumerate(names):
        r, c0 = 1 + n // 2, (n % 2) * block
        _kernel_panel(axes[r, c0], name, kernels.get(name))
        for c, (img_name, resp) in enumerate(responses.items(), start=c0 + 1):
            _response(axes[r, c], resp[name], f"on {img_name}")
    shape = next(iter(responses.values()))[names[0]].shape
    fig.suptitle(f"3x3 kernels, stride 1, padding {padding}: a 28x28 image gives {shape[0]}x{shape[1]}"
                 + ("" if padding else " (valid: no zero border to respond to)"), fontsize=12)
    return finish(fig, save)


def _kernel_panel(ax, name: str, kernel) -> None:
    title = name.replace("_", " ") + (" (tutorial)" if name == "diagonal_edge" else "")
    if kernel is None:  # the Sobel magnitude: computed from two kernels
        ax.text(0.5, 0.5, "sqrt(sobel_x^2\n+ sobel_y^2)", ha="center", va="center", fontsize=KERNEL_FONT,
                transform=ax.transAxes)
        ax.set_title(title, fontsize=10)
        return
    show(ax, np.asarray(kernel, dtype=np.float64), title=title, diverging=True, colorbar=None, numbers="{:.2g}",
         fontsize=KERNEL_FONT)
