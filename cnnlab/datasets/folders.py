"""Your own images: a folder of class sub-folders, or one picture to classify.

Layout expected by :func:`load_image_folder` (the torchvision ImageFolder convention)::

    root/
      cat/  001.png  002.jpg ...
      dog/  a.png ...

Class names are the sub-folder names, sorted; label ``i`` is ``class_names[i]``. Every
image is read through ``cnnlab.datasets.images.open_untrusted_image``: only allowed raster
formats, detected from the content (a PostScript file named ``.png`` is refused, never given
to Ghostscript); an unreadable, empty or non-image file raises a ValueError naming it, and
an image above ``PIL.Image.MAX_IMAGE_PIXELS`` is refused before decoding.
"""
from __future__ import annotations

from numbers import Integral
from pathlib import Path

import numpy as np
from PIL import Image

from cnnlab.datasets.images import open_untrusted_image
from cnnlab.datasets.photos import PHOTO_WORK_SIDE, photo_to_mnist

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".ico")
#: to_mnist_like first shrinks larger pictures to at most this many pixels a side (see there)
MNIST_LIKE_MAX_SIDE = PHOTO_WORK_SIDE


def _check_size(image_size, name: str = "image_size") -> tuple[int, int]:
    if isinstance(image_size, Integral) and not isinstance(image_size, bool):
        image_size = (image_size, image_size)
    ok = (isinstance(image_size, (tuple, list)) and len(image_size) == 2
          and all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in image_size))
    if not ok:
        raise ValueError(f"{name} must be a positive int or a pair (height, width) of them; received {image_size!r}.")
    return int(image_size[0]), int(image_size[1])


def _to_mode(img: Image.Image, grayscale: bool) -> Image.Image:
    """Convert to "L" or "RGB": 16-bit greys scaled to 8 bits, transparency flattened on white."""
    if img.mode.startswith("I;16"):
        img = Image.fromarray((np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8))  # (H, W) -> mode L
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = Image.alpha_composite(Image.new("RGBA", img.size, (255, 255, 255, 255)), img.convert("RGBA"))
    return img.convert("L" if grayscale else "RGB")


def open_image(path, grayscale: bool = True) -> Image.Image:
    """Open and fully decode one image (a path, bytes or a binary file object) as a Pillow
    image in mode "L" or "RGB". Only the raster formats of
    ``cnnlab.datasets.images.ALLOWED_FORMATS`` are read, detected from the content whatever
    the file is called: no other program ever starts (see ``open_untrusted_image``).

    Args:
        path: a file path, or an open binary file object (e.g. ``io.BytesIO`` of an upload).

    Raises:
        FileNotFoundError: no such file.
        ValueError: empty file, not an allowed image format (named), truncated or corrupt,
            larger than ``PIL.Image.MAX_IMAGE_PIXELS`` (a possible decompression bomb), or
            needing more memory to decode than is available; the message names the file.
    """
    img = open_untrusted_image(path)
    try:
        return _to_mode(img, grayscale)
    except MemoryError:
        raise ValueError(f"cannot convert image {path if isinstance(path, (str, Path)) else ''}: not enough "
                         f"memory.") from None
    finally:
        img.close()


def load_image_folder(root, image_size=(28, 28), grayscale: bool = True, *,
                      extensions=IMAGE_EXTENSIONS):
    """Load a labelled image collection stored as one sub-folder per class.

    Each image is converted to grayscale (or RGB) and resized to ``image_size`` (stretched,
    no aspect-preserving; bilinear with antialiasing). Files whose extension is not in
    ``extensions`` and hidden files or folders (names starting with ".") are ignored.
    Images of one class are taken in file-name order.

    Args:
        root: the folder holding the class sub-folders.
        image_size: (height, width), or one int for square images.
        grayscale: one channel (else three, RGB).
        extensions: file extensions counted as images (case-insensitive).

    Returns:
        ``(x, y, class_names)``: images, int64 labels, and the sorted sub-folder names.

    Shape:
        - x: (N, H, W) uint8 when grayscale, (N, 3, H, W) uint8 (channels-first) for colour
        - y: (N,) int64 in [0, len(class_names))

    Raises:
        FileNotFoundError / NotADirectoryError: ``root`` is missing or is a file.
        ValueError: no class folders, a class folder without images (named), or an image
            that cannot be read (named).
    """
    H, W = _check_size(image_size)
    if isinstance(extensions, str):
        extensions = (extensions,)
    exts = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in extensions)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder {root} does not exist.")
    if not root.is_dir():
        raise NotADirectoryError(f"image folder {root} is a file; pass the folder holding one sub-folder per class.")
    class_dirs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                        key=lambda d: d.name)
    if not class_dirs:
        raise ValueError(
            f"image folder {root} has no class sub-folders; expected {root}/<class name>/<image files>."
        )
    files_per_class = []
    for d in class_dirs:
        entries = [p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = sorted((p for p in entries if p.suffix.lower() in exts), key=lambda p: p.name)
        if not images:
            other = f" (it holds {len(entries)} other file(s), e.g. {entries[0].name})" if entries else ""
            raise ValueError(
                f"class folder {d} (class {d.name!r}) holds no images with extensions {', '.join(exts)}{other}."
            )
        files_per_class.append(images)

    n = sum(len(f) for f in files_per_class)
    x = np.empty((n, H, W) if grayscale else (n, H, W, 3), dtype=np.uint8)
    i = 0
    for images in files_per_class:
        for p in images:
            img = open_image(p, grayscale)
            if img.size != (W, H):
                img = img.resize((W, H), Image.Resampling.BILINEAR)
            x[i] = np.asarray(img)
            i += 1
    if not grayscale:
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, 3) -> (N, 3, H, W)
    y = np.repeat(np.arange(len(class_dirs), dtype=np.int64), [len(f) for f in files_per_class])  # (N,)
    return x, y, [d.name for d in class_dirs]


def to_mnist_like(gray: np.ndarray, image_size=(28, 28)) -> np.ndarray:
    """Make a grayscale picture of a digit look like an MNIST sample.

    See :func:`cnnlab.datasets.preprocessing.photo_to_mnist`: shrink big pictures; estimate
    the background (grey or unevenly lit paper, soft shadows) and remove it; take the ink of
    either polarity, bright on black; crop to it; scale it, keeping the aspect ratio, to fit
    a 20x20 box (for 28x28; ``20/28`` of the size in general); place it so its centre of
    mass is at pixel (H/2, W/2), where MNIST has it.

    Args:
        gray: uint8 grayscale image, any size.
        image_size: (height, width) of the result.

    Returns:
        uint8 image of shape ``image_size``; all zeros when the picture is blank.

    Shape:
        - gray: (h, w)
        - output: (H, W)

    Example:
        >>> img = np.full((40, 30), 250, np.uint8); img[10:30, 12:16] = 10  # dark "1" on white
        >>> out = to_mnist_like(img)
        >>> out.shape, int(out[0, 0]), int(out.max())
        ((28, 28), 0, 255)
    """
    H, W = _check_size(image_size)
    if not isinstance(gray, np.ndarray) or gray.ndim != 2 or gray.dtype != np.uint8 or gray.size == 0:
        raise ValueError(f"to_mnist_like needs a non-empty 2-D uint8 image; received {getattr(gray, 'shape', gray)!r}"
                         f" of dtype {getattr(gray, 'dtype', type(gray).__name__)}.")
    return photo_to_mnist(gray, (H, W))[0]  # background estimated and removed, not just inverted


def load_image(path, image_size=(28, 28), mnist_like: bool = True) -> np.ndarray:
    """Read one picture for prediction, as a grayscale uint8 image.

    Args:
        path: an image file (PNG, JPEG, BMP, GIF, ...), or an open binary file object.
        image_size: (height, width) of the result, or one int.
        mnist_like: prepare it like an MNIST digit (see :func:`to_mnist_like`: inverted when
            the background is light, cropped, scaled into a 20x20 box keeping the aspect
            ratio, padded with black, centred by mass). When False: only converted to
            grayscale and resized (stretched) to ``image_size``.

    Returns:
        uint8 array, 0..255.

    Shape:
        - output: (H, W), (28, 28) by default

    Raises:
        FileNotFoundError, ValueError: as :func:`open_image` (the file is named).
    """
    H, W = _check_size(image_size)
    img = open_image(path, grayscale=True)
    if mnist_like:
        return to_mnist_like(np.asarray(img), (H, W))
    if img.size != (W, H):
        img = img.resize((W, H), Image.Resampling.BILINEAR)
    return np.asarray(img).copy()
