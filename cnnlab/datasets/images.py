"""Open an untrusted image: only raster formats on an allow-list, detected from the content.

Pillow recognises 40+ formats by their first bytes whatever the file is called, and some of
them hand the file to another program (PostScript and EPS start Ghostscript). A ``.png``
from a stranger may be anything, so :func:`open_untrusted_image` reads the first bytes,
names the format they show, refuses anything outside :data:`ALLOWED_FORMATS`, and then lets
Pillow try *only* that one format (``Image.open(..., formats=[...])``): no other plugin,
and no external program, ever sees the data. The pixel count is bounded before decoding.

Used by every place cnnlab opens an image (``load_image``, ``load_image_folder``, the CLI's
``predict``, ``visualize`` and ``explain``) and usable on uploads: it takes a path, bytes or a
binary file object.

Example:
    >>> import io
    >>> from PIL import Image
    >>> buf = io.BytesIO(); Image.new("L", (5, 3)).save(buf, format="PNG")
    >>> open_untrusted_image(buf.getvalue()).size
    (5, 3)
    >>> open_untrusted_image(b"%!PS-Adobe-3.0 EPSF-3.0 ...")
    Traceback (most recent call last):
    ...
    ValueError: cannot read image: its content is PostScript/EPS, not an allowed format; cnnlab opens only PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM, ICO.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: Pillow format name -> the name users know; the raster formats users need, decoded in-process
ALLOWED_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "BMP": "BMP", "GIF": "GIF", "TIFF": "TIFF", "WEBP": "WebP",
                   "PPM": "PPM/PGM", "ICO": "ICO"}
#: images above this many pixels are refused before decoding (Pillow's own bomb limit, 89 M)
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
_SNIFF_BYTES = 64

# (magic at offset 0, Pillow format): allowed formats first, then well-known others, named only
# so that the error says what the file really is
_ALLOWED_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"\x00\x00\x01\x00", "ICO"),
)
_OTHER_MAGIC = (
    (b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "PostScript/EPS"), (b"%PDF", "PDF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xff\x4f\xff\x51", "JPEG 2000"), (b"8BPS", "Photoshop PSD"),
    (b"\xd7\xcd\xc6\x9a", "Windows metafile"),
    (b"<?xml", "XML/SVG"), (b"<svg", "SVG"), (b"#define", "XBM"), (b"/* XPM */", "XPM"),
    (b"\x00\x00\x00\x0cftyp", "HEIF/AVIF"), (b"icns", "ICNS"), (b"DDS ", "DDS"), (b"SIMPLE  =", "FITS"),
    (b"FORM", "IFF/ILBM"), (b"\x59\xa6\x6a\x95", "Sun raster"), (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
)


def detect_format(head: bytes) -> str | None:
    """The image format the first bytes show: a key of :data:`ALLOWED_FORMATS`, a descriptive
    name of a refused format (e.g. ``"PostScript/EPS"``), or None when unknown."""
    for magic, name in _ALLOWED_MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n#":
        return "PPM"  # P1-P6: PBM, PGM, PPM (plain and raw)
    if head[:4] == b"RIFF":
        return "RIFF (not WebP)"
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    return None


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"image file {source}"
    return "image"


def open_untrusted_image(source, *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open and fully decode an image of an allowed raster format, whatever its name says.

    Args:
        source: a path, ``bytes``/``bytearray``, or a binary file object (read from its
            current position; uploads).
        max_pixels: refuse images with more pixels than this, before decoding.

    Returns:
        the decoded Pillow image, in the file's own mode (see ``folders.open_image`` for the
        conversion to "L"/"RGB").

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: empty, not an allowed format (the message names the format detected),
            larger than ``max_pixels``, truncated or corrupt, or needing more memory to decode
            than is available. Never starts another program.
    """
    what = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"image file {path} does not exist.")
        if not path.is_file():
            raise ValueError(f"image path {path} is not a file.")
        with open(path, "rb") as f:
            return _open(f, what, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _open(io.BytesIO(bytes(source)), what, max_pixels)
    if hasattr(source, "read"):
        return _open(source, what, max_pixels)
    raise TypeError(f"image source must be a path, bytes or a binary file object; received {type(source).__name__}.")


def _open(f, what: str, max_pixels: int) -> Image.Image:
    try:
        start = f.tell() if f.seekable() else None
    except (OSError, AttributeError):
        start = None
    if start is None:  # a pipe or socket: Pillow needs to seek, so read it (bounded by the caller)
        f = io.BytesIO(f.read())
        start = 0
    head = f.read(_SNIFF_BYTES)
    if not isinstance(head, bytes):
        raise TypeError(f"{what}: the file object must be opened in binary mode ('rb').")
    if not head:
        raise ValueError(f"{what} is empty (0 bytes).")
    fmt = detect_format(head)
    if fmt not in ALLOWED_FORMATS:
        shown = "is not an image cnnlab knows" if fmt is None else f"is {fmt}, not an allowed format"
        raise ValueError(f"cannot read {what}: its content {shown}; cnnlab opens only "
                         f"{', '.join(ALLOWED_FORMATS.values())}.")
    f.seek(start)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f, formats=[fmt])  # only this plugin may read the data
            width, height = img.size
            if width * height > max_pixels:
                raise ValueError(f"{what} is {width}x{height} = {width * height:,} pixels; at most {max_pixels:,} "
                                 f"are read (a possible decompression bomb).")
            img.load()  # decode now, inside the guard: Pillow is lazy
            return img
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise ValueError(f"{what} is too large to be read safely: {e}") from None
    except MemoryError:
        # A corrupted chunk length makes Pillow ask for a buffer of up to 4 GB even for a tiny
        # file; under a memory limit that is a MemoryError, which here means "bad file".
        raise ValueError(f"cannot read {what}: decoding it needs more memory than is available "
                         f"(corrupted or hostile file?).") from None
    except ValueError as e:
        if str(e).startswith(what):
            raise
        raise ValueError(f"cannot read {what}: ValueError: {e}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
            struct.error) as e:
        raise ValueError(f"cannot read {what} ({ALLOWED_FORMATS[fmt]}): {type(e).__name__}: {e}") from None
