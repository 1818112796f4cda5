"""Photos of handwritten digits -> MNIST-like images: fit and remove the background (paper
colour, gradients, shadows), find the ink of either polarity, crop it and centre it as MNIST
does (a 20x20 box by mass in 28x28). Used by ``to_mnist_like``, so ``cnnlab predict``, ``load_image``
and the lab's uploads see what MNIST-trained models expect.
"""
from __future__ import annotations

import numpy as np

#: photos are block-averaged down to at most this many pixels a side first: the digit ends up
#: 20 pixels tall, and averaging also lowers the sensor noise
PHOTO_WORK_SIDE = 512
_MNIST_BOX = 20 / 28  # MNIST digits are scaled to fit a 20x20 box inside the 28x28 image


def _surface_terms(h: int, w: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The 6 terms of a quadratic surface at pixel (rows, cols), coordinates scaled to [-1, 1]."""
    y = rows * (2.0 / max(h - 1, 1)) - 1.0
    x = cols * (2.0 / max(w - 1, 1)) - 1.0
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1)  # (..., 6)


def estimate_background(gray: np.ndarray, *, max_samples_side: int = 96, rounds: int = 8):
    """The paper's brightness under the ink: a quadratic surface fitted robustly to the picture.

    Grey paper, a lighting gradient and soft shadows are smooth, so a quadratic surface
    follows them; the ink is thin and covers a minority of the pixels, so it is treated as
    outliers: each round refits on the pixels within 2.5 noise sigmas (robust: 1.4826 x
    median absolute deviation) of the previous surface. The fit runs on a grid of at most
    ``max_samples_side`` pixels a side, then the surface is evaluated on every pixel.

    Args:
        gray: a grayscale picture, any real dtype.

    Returns:
        ``(background, sigma)``: float32 surface, and the noise level around it (>= 1 grey level).

    Shape:
        gray: (h, w). background: (h, w).

    Example:
        >>> ramp = np.add.outer(np.arange(40.0), np.arange(60.0))  # a lighting gradient
        >>> img = ramp.copy(); img[10:30, 28:31] -= 100             # a dark stroke on it
        >>> bg, sigma = estimate_background(img)
        >>> bool(np.abs(bg - ramp).max() < 0.5), sigma
        (True, 1.0)
    """
    g = np.asarray(gray, dtype=np.float64)
    h, w = g.shape
    step = max(1, -(-max(h, w) // max_samples_side))
    rows, cols = np.mgrid[0:h:step, 0:w:step]  # (hs, ws) each
    terms = _surface_terms(h, w, rows.ravel(), cols.ravel())  # (n, 6)
    values = g[::step, ::step].ravel()  # (n,)
    keep = np.ones(values.shape, dtype=bool)
    sigma = 1.0
    for _ in range(rounds):
        coef = np.linalg.lstsq(terms[keep], values[keep], rcond=None)[0]  # (6,)
        residual = values - terms @ coef
        sigma = max(1.0, 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep])))))
        new_keep = np.abs(residual) <= 2.5 * sigma
        if new_keep.sum() < 6 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    full_rows, full_cols = np.mgrid[0:h, 0:w]
    background = _surface_terms(h, w, full_rows, full_cols) @ coef  # (h, w)
    return background.astype(np.float32), sigma


def _median3x3(a: np.ndarray) -> np.ndarray:
    """3x3 median filter (edges repeated): removes isolated noise pixels, keeps strokes."""
    p = np.pad(a, 1, mode="edge")
    h, w = a.shape
    shifted = np.stack([p[i:i + h, j:j + w] for i in range(3) for j in range(3)])  # (9, h, w)
    return np.median(shifted, axis=0)


def find_ink(gray: np.ndarray):
    """Separate the ink of a photographed digit from its background.

    Steps: subtract the robust background surface (:func:`estimate_background`); take the
    ink's polarity from the stronger tail of the residual (dark ink on light paper or light
    on dark); remove isolated noise pixels (3x3 median); keep what stands out from the
    background by more than 3 noise sigmas and 15% of the ink's contrast; scale so the
    strongest ink is 1.

    Args:
        gray: a grayscale picture (uint8 or float, any size; at most ~``PHOTO_WORK_SIDE``
            pixels a side is plenty).

    Returns:
        ``(ink, found)``: float32 ink strength in [0, 1], and False when nothing stands out
        from the background by at least 8 noise sigmas (a blank picture; ``ink`` is then 0).

    Shape:
        gray: (h, w). ink: (h, w).
    """
    g = np.asarray(gray, dtype=np.float32)
    background, sigma = estimate_background(g)
    residual = g - background  # (h, w)
    bright, dark = np.percentile(residual, [99.9, 0.1])
    ink = residual if bright >= -dark else -residual
    ink = _median3x3(ink)
    contrast = float(np.percentile(ink, 99.9)) if ink.size >= 1000 else float(ink.max())
    if contrast < max(8.0 * sigma, 12.0):  # 12 grey levels: less is no visible mark
        return np.zeros(g.shape, np.float32), False
    floor = max(3.0 * sigma, 0.15 * contrast)
    ink = np.clip((ink - floor) / (contrast - floor), 0.0, 1.0).astype(np.float32)
    return ink, bool(ink.max() > 0)


def center_like_mnist(ink: np.ndarray, image_size=(28, 28)) -> np.ndarray:
    """Crop ink in [0, 1] to its bounding box, scale it (keeping the aspect ratio) into a 20x20
    box (``20/28`` of ``image_size``), and place it so its centre of mass is at (H/2, W/2),
    as MNIST does.

    Returns:
        uint8 image of ``image_size``, the strongest ink at 255; all zeros when there is no ink.

    Shape:
        ink: (h, w). output: image_size.
    """
    from PIL import Image

    H, W = image_size
    out = np.zeros((H, W), dtype=np.uint8)
    rows = np.flatnonzero((ink > 0.1).any(axis=1))  # ink: above 10% of full strength
    cols = np.flatnonzero((ink > 0.1).any(axis=0))
    if rows.size == 0:
        return out
    g = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] * np.float32(255)  # (h_ink, w_ink)
    box = max(1, round(_MNIST_BOX * min(H, W)))
    scale = box / max(g.shape)
    h, w = max(1, round(g.shape[0] * scale)), max(1, round(g.shape[1] * scale))
    small = np.asarray(Image.fromarray(np.round(g).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR),
                       dtype=np.float32)  # (h, w)
    mass = small.sum()
    if mass <= 0:
        return out
    cy = (small.sum(axis=1) * np.arange(h)).sum() / mass
    cx = (small.sum(axis=0) * np.arange(w)).sum() / mass
    # MNIST puts the centre of mass at pixel index (14, 14) of 28 (measured: 13.99, 14.01)
    top = int(np.clip(round(H / 2 - cy), 0, H - h))
    left = int(np.clip(round(W / 2 - cx), 0, W - w))
    small *= 255 / small.max()
    out[top:top + h, left:left + w] = np.round(small).astype(np.uint8)
    return out


def photo_to_mnist(gray: np.ndarray, image_size=(28, 28)):
    """A photo (or scan, or drawing) of one digit as an MNIST-like image, and whether it has ink.

    Block-averages the picture down to at most ``PHOTO_WORK_SIDE`` pixels a side, finds the
    ink against an estimated background (:func:`find_ink`: grey or unevenly lit paper, noise,
    soft shadows, either polarity), then crops, scales and centres it (:func:`center_like_mnist`).

    Args:
        gray: uint8 grayscale picture, any size.
        image_size: (height, width) of the result.

    Returns:
        ``(image, found)``: uint8 image, bright ink on black; ``found`` is False (and the
        image all zeros) when the picture holds no ink.

    Shape:
        gray: (h, w). image: image_size.

    Example:
        >>> paper = np.full((90, 60), 170, np.uint8); paper[20:70, 28:33] = 60  # a grey "1"
        >>> img, found = photo_to_mnist(paper)
        >>> img.shape, found, int(img[0, 0]), int(img.max())
        ((28, 28), True, 0, 255)
        >>> photo_to_mnist(np.full((90, 60), 170, np.uint8))[1]
        False
    """
    from PIL import Image

    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
        raise ValueError(f"photo_to_mnist needs a non-empty 2-D uint8 image; received "
                         f"{getattr(gray, 'shape', gray)!r} of dtype {getattr(gray, 'dtype', type(gray).__name__)}.")
    factor = -(-max(gray.shape) // PHOTO_WORK_SIDE)
    if factor > 1:  # a 9000x9000 photo would need GBs of float temporaries; the digit ends 20 px tall
        gray = np.asarray(Image.fromarray(gray).reduce(factor))  # (ceil(h / f), ceil(w / f))
    ink, found = find_ink(gray)
    return center_like_mnist(ink, image_size), found
