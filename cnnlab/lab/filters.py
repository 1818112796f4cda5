"""Classic hand-made 3x3 filters, and a one-line way to slide them over an image.

Before CNNs learned their filters, image processing designed them by hand; the first layer
of a trained CNN learns filters much like these. Every kernel here is applied as cnnlab's
convolution applies a learned filter: a *cross-correlation* (the kernel is not flipped), so
the kernel reads as a picture of the pattern it responds to.

The arrays are float64 and read-only (shared constants); ``apply_kernel`` casts them to the
image's dtype.

Example:
    >>> image = np.zeros((7, 7)); image[:, :3] = 10       # bright left, dark right
    >>> apply_kernel(image, vertical_edge)
    array([[ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.],
           [ 0., 30., 30.,  0.,  0.]])
    >>> sorted(KERNELS)[:4]
    ['box_blur', 'diagonal_edge', 'diagonal_edge_anti', 'diagonal_edge_main']
"""
from __future__ import annotations

import numpy as np

from cnnlab.datasets.worked_examples import TUTORIAL_DIAGONAL
from cnnlab.ops.conv import conv2d_forward

__all__ = ["vertical_edge", "horizontal_edge", "diagonal_edge", "diagonal_edge_main", "diagonal_edge_anti", "sobel_x", "sobel_y",
           "box_blur", "gaussian_blur", "sharpen", "identity", "laplacian", "KERNELS", "apply_kernel",
           "sobel_magnitude"]


def _const(rows) -> np.ndarray:
    a = np.array(rows, dtype=np.float64)
    a.setflags(write=False)
    return a


#: Responds to vertical edges, positive where bright is on the LEFT: ``[[1, 0, -1]] * 3``
#: (left column minus right column; the tutorials' edge detector).
vertical_edge = _const([[1, 0, -1]] * 3)

#: Responds to horizontal edges, positive where bright is ABOVE (top row minus bottom row).
horizontal_edge = _const([[1, 1, 1], [0, 0, 0], [-1, -1, -1]])

#: The kernel-zoo tutorial's diagonal edge detector ``[[2, 1, 0], [1, 0, -1], [0, -1, -2]]``: zeros
#: on the anti-diagonal, so it responds to edges running like ``/``, positive where bright is
#: above-left; the 2 / -2 corners weigh the pixels farthest from the edge most.
diagonal_edge = _const(TUTORIAL_DIAGONAL)

#: Zeros on the main diagonal: responds to edges running like ``\``, positive where bright
#: is above-right of the line.
diagonal_edge_main = _const([[0, 1, 1], [-1, 0, 1], [-1, -1, 0]])

#: Zeros on the anti-diagonal: responds to edges running like ``/``, positive where bright
#: is above-left of the line.
diagonal_edge_anti = _const([[1, 1, 0], [1, 0, -1], [0, -1, -1]])

#: Sobel derivative along x (columns, to the right): positive where the image gets brighter
#: to the right (OpenCV's sign; note ``vertical_edge`` has the opposite sign). The 1-2-1 rows
#: smooth across the edge while differentiating along it.
sobel_x = _const([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])

#: Sobel derivative along y (rows, downwards): positive where the image gets brighter below.
sobel_y = _const([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])

#: Mean of the 3x3 neighbourhood: blurs, weights sum to 1 (keeps brightness).
box_blur = _const(np.full((3, 3), 1 / 9))

#: Gaussian-like blur, the outer product ``[1, 2, 1]^T [1, 2, 1] / 16``: weights the centre most.
gaussian_blur = _const(np.outer([1, 2, 1], [1, 2, 1]) / 16)

#: Sharpen: the identity plus a negative Laplacian (centre 5, 4-neighbours -1); weights sum to 1.
sharpen = _const([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])

#: Identity: copies the centre pixel (a convolution can do nothing at all).
identity = _const([[0, 0, 0], [0, 1, 0], [0, 0, 0]])

#: Laplacian (4-neighbour): second derivative, zero on flat areas and on linear ramps,
#: large at blobs and thin lines; weights sum to 0.
laplacian = _const([[0, 1, 0], [1, -4, 1], [0, 1, 0]])

#: name -> kernel
KERNELS: dict[str, np.ndarray] = {
    "vertical_edge": vertical_edge, "horizontal_edge": horizontal_edge,
    "diagonal_edge": diagonal_edge, "diagonal_edge_main": diagonal_edge_main, "diagonal_edge_anti": diagonal_edge_anti,
    "sobel_x": sobel_x, "sobel_y": sobel_y, "box_blur": box_blur, "gaussian_blur": gaussian_blur,
    "sharpen": sharpen, "identity": identity, "laplacian": laplacian,
}


def apply_kernel(image2d, kernel, stride=1, padding=0) -> np.ndarray:
    """Slide one 2-D kernel over one 2-D image with cnnlab's ``conv2d_forward``.

    Args:
        image2d: grayscale image; a float array keeps its dtype, anything else (uint8
            pixels, lists) is converted to float64.
        kernel: (KH, KW) array or a name from :data:`KERNELS`.
        stride: int or pair.
        padding: int, pair, ``"valid"`` or ``"same"``; zeros.

    Returns:
        the feature map, in the image's float dtype.

    Shape:
        image2d: (H, W). kernel: (KH, KW). returns: (H_out, W_out),
        ``H_out = floor((H + 2*ph - KH) / sh) + 1``.

    Raises:
        ValueError: not 2-D, unknown kernel name, kernel larger than the padded image.
    """
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(f"unknown kernel {kernel!r}; known kernels: {', '.join(sorted(KERNELS))}.")
        kernel = KERNELS[kernel]
    image = np.asarray(image2d)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    kernel = np.asarray(kernel)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"apply_kernel expected a 2-D image (H, W) and a 2-D kernel (KH, KW); received shapes "
                         f"{image.shape} and {kernel.shape}.")
    w = kernel.astype(image.dtype)[None, None]  # (1, 1, KH, KW)
    out, _ = conv2d_forward(image[None, None], w, None, stride, padding)  # (1, 1, H_out, W_out)
    return out[0, 0]


def sobel_magnitude(image2d, padding="same") -> np.ndarray:
    """Edge strength ``sqrt(gx**2 + gy**2)`` from the two Sobel derivatives.

    Args:
        image2d: grayscale image, as for :func:`apply_kernel`.
        padding: ``"same"`` (default: the map has the image's size) or anything
            :func:`apply_kernel` accepts.

    Shape:
        image2d: (H, W). returns: (H, W) with the default padding.

    Example:
        >>> image = np.zeros((5, 5)); image[:, 3:] = 1       # a step from dark to bright
        >>> sobel_magnitude(image)[2]    # the step, and a fake edge where zero padding meets 1s
        array([0., 0., 4., 4., 4.])
    """
    gx = apply_kernel(image2d, sobel_x, padding=padding)
    gy = apply_kernel(image2d, sobel_y, padding=padding)
    return np.sqrt(gx * gx + gy * gy)
