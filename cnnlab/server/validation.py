"""Reading and checking request bodies. Every problem is a :class:`BadRequest`, which the app
turns into a 4xx JSON error ``{"error": "..."}`` naming the field, the rule and what came.

Bodies are read in chunks and refused as soon as they pass their size limit, so a huge
request never sits in memory.
"""
from __future__ import annotations

import json
import math
from numbers import Integral, Real

MAX_JSON_BYTES = 64 * 1024  # the largest JSON body: a 28x28 pixel list is ~3.5 KB
MAX_IMAGE_BYTES = 4 * 1024 * 1024  # an uploaded picture
MAX_IMAGE_PIXELS = 4096 * 4096  # checked on the header before decoding (bounded memory)
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")  # the formats of cnnlab.datasets.IMAGE_EXTENSIONS


class BadRequest(Exception):
    """A request the server refuses: HTTP ``status`` and a message naming the problem."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


async def read_body(request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"Content-Length must be a number of bytes; received {declared!r}")
        if int(declared) > limit:
            raise BadRequest(f"request body too large: {int(declared):,} bytes; the limit is {limit:,}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body too large: more than {limit:,} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request, limit: int = MAX_JSON_BYTES) -> dict:
    """The body as a JSON object (dict)."""
    body = await read_body(request, limit)
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BadRequest(f"the body is not valid JSON: {err}") from None
    except RecursionError:
        raise BadRequest("the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest(f"expected a JSON object; received {type(data).__name__}")
    return data


def check_fields(data: dict, allowed) -> None:
    """Refuse unknown fields (a typo should not be silently ignored)."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown field(s) {unknown}; allowed: {sorted(allowed)}")


def get_int(data: dict, name: str, lo: int, hi: int, default=None) -> int:
    """Field ``name`` as an int in [lo, hi] (``default`` when absent and a default is given)."""
    if name not in data or data[name] is None:
        if default is not None:
            return default
        raise BadRequest(f"missing field {name!r} (an integer in [{lo}, {hi}])")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise BadRequest(f"{name} must be an integer in [{lo}, {hi}]; received {value!r}")
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be in [{lo}, {hi}]; received {value}")
    return int(value)


def get_float(data: dict, name: str, lo: float, hi: float, default=None) -> float:
    """Field ``name`` as a finite float in [lo, hi]."""
    if name not in data or data[name] is None:
        if default is not None:
            return default
        raise BadRequest(f"missing field {name!r} (a number in [{lo:g}, {hi:g}])")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise BadRequest(f"{name} must be a number in [{lo:g}, {hi:g}]; received {value!r}")
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be in [{lo:g}, {hi:g}]; received {value!r}")
    return float(value)


def get_choice(data: dict, name: str, choices, default=None) -> str:
    """Field ``name`` as one of ``choices``."""
    value = data.get(name, default)
    if value is None:
        raise BadRequest(f"missing field {name!r} (one of {list(choices)})")
    if not isinstance(value, str) or value not in choices:
        raise BadRequest(f"{name} must be one of {list(choices)}; received {value!r}")
    return value


def get_bool(data: dict, name: str, default: bool) -> bool:
    """Field ``name`` as a JSON boolean."""
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{name} must be true or false; received {value!r}")
    return value


def get_pixels(data: dict, shape) -> list:
    """Field ``pixels``: H*W integers in [0, 255] (the model input the server reported)."""
    size = 1
    for d in shape:
        size *= int(d)
    value = data.get("pixels")
    if not isinstance(value, list) or len(value) != size:
        got = f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__
        raise BadRequest(f"pixels must be a list of {size} integers in [0, 255] (shape {list(shape)}); received {got}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, Integral) or not 0 <= v <= 255:
            raise BadRequest(f"pixels must be integers in [0, 255]; received {v!r}")
    return value


def check_image_bytes(data: bytes) -> None:
    """Refuse an upload that is empty, not PNG/JPEG/BMP/GIF, or too many pixels to decode safely
    (read from the header alone: nothing is decoded here)."""
    import io

    from PIL import Image, UnidentifiedImageError

    if not data:
        raise BadRequest("the image is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as img:  # lazy: reads the header only
            fmt, (w, h) = img.format, img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise BadRequest(f"not a readable image ({type(err).__name__}); send PNG, JPEG, BMP or GIF") from None
    if fmt not in IMAGE_FORMATS:
        raise BadRequest(f"image format {fmt} is not accepted; send one of {', '.join(IMAGE_FORMATS)}", 415)
    if w * h > MAX_IMAGE_PIXELS:
        raise BadRequest(f"image of {w}x{h} pixels is too large; the limit is {MAX_IMAGE_PIXELS:,} pixels", 413)
