"""Read and write the IDX format of MNIST and its relatives, raw or gzip-compressed.

An IDX file is a header followed by the array's elements, row-major and big-endian::

    byte 0-1   0x00 0x00                       magic: always two zero bytes
    byte 2     dtype code                      0x08 uint8, 0x09 int8, 0x0B int16,
                                               0x0C int32, 0x0D float32, 0x0E float64
    byte 3     ndim                            1..8 here (the format allows up to 255)
    then       ndim big-endian uint32 sizes    e.g. 60000, 28, 28
    then       prod(sizes) * itemsize bytes    the data

Reading is defensive: the header's sizes give the exact byte count the file must have, and
that count is compared with what is really there *before* the array is allocated, so a
corrupted or malicious header claiming 10**12 elements fails at once instead of exhausting
memory. Compression is detected from the gzip magic bytes (0x1f 0x8b), never from the name.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from cnnlab.utils.files import atomic_writer as _atomic_writer
from cnnlab.utils.validation import check_array

#: IDX dtype code -> big-endian NumPy dtype
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_NDIM = 8
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20  # never ask a stream for more than 1 MiB at once: reads stay bounded by real data


# ----- header ---------------------------------------------------------------------------
def parse_header(head: bytes, name: str = "IDX data") -> tuple[np.dtype, int]:
    """Decode the 4-byte magic number of an IDX file.

    Args:
        head: the first 4 bytes of the (decompressed) file.
        name: how to call the source in error messages.

    Returns:
        ``(dtype, ndim)``: the big-endian element dtype and the number of dimensions.

    Raises:
        ValueError: bad magic, unknown dtype code, ndim 0 or above 8, fewer than 4 bytes.

    Example:
        >>> parse_header(bytes([0, 0, 0x08, 3]))
        (dtype('uint8'), 3)
    """
    if len(head) < 4:
        raise ValueError(
            f"{name} is truncated: an IDX header needs at least 4 bytes; received {len(head)}."
        )
    if head[0] != 0 or head[1] != 0:
        raise ValueError(
            f"{name} is not an IDX file: it must start with two zero bytes; received "
            f"0x{head[0]:02x} 0x{head[1]:02x}."
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X} {d.name}" for c, d in IDX_DTYPES.items())
        raise ValueError(f"{name} has unknown IDX dtype code 0x{code:02X}; known codes: {known}.")
    if not 1 <= ndim <= MAX_NDIM:
        raise ValueError(f"{name} declares {ndim} dimensions; cnnlab reads IDX arrays of 1 to {MAX_NDIM}.")
    return IDX_DTYPES[code], ndim


def _parse_dims(raw: bytes, ndim: int, name: str) -> tuple[int, ...]:
    if len(raw) < 4 * ndim:
        raise ValueError(
            f"{name} is truncated: its header declares {ndim} dimensions ({4 * ndim} bytes of sizes) "
            f"but only {len(raw)} bytes follow."
        )
    return tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim))


def _expected_bytes(dtype: np.dtype, shape: tuple[int, ...]) -> int:
    return math.prod(shape) * dtype.itemsize  # Python ints: no overflow for lying headers


def _size_error(name: str, shape, dtype: np.dtype, expected: int, received: int, *,
                streamed: bool = False) -> ValueError:
    """The error for a data size that differs from the header's. ``streamed``: reading stopped
    one byte past ``expected``, so only "more" is known."""
    what = f"{name}: the header declares shape {shape} of {dtype.name}, i.e. {expected} data bytes,"
    if received < expected:
        return ValueError(f"{what} but the file holds {received} (truncated or corrupted file, or a lying header).")
    extra = "more" if streamed else f"{received}: {received - expected}"
    return ValueError(f"{what} but the file holds {extra} unexpected trailing bytes.")


def _to_native(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.itemsize == 1:
        return arr.view(arr.dtype.newbyteorder("="))
    return arr.astype(arr.dtype.newbyteorder("="))  # copy: big-endian -> native order


# ----- decoding -------------------------------------------------------------------------
def decode_idx(buffer, name: str = "IDX data") -> np.ndarray:
    """Decode a complete, decompressed IDX file held in memory (no copy for 1-byte dtypes).

    Args:
        buffer: bytes, bytearray or memoryview holding header and data.
        name: how to call the source in error messages.

    Returns:
        The array in native byte order; writable when ``buffer`` is a bytearray.

    Raises:
        ValueError: on any header problem or when the size does not match the header.

    Example:
        >>> decode_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 9]))
        array([7, 9], dtype=uint8)
    """
    view = memoryview(buffer).cast("B")
    dtype, ndim = parse_header(bytes(view[:4]), name)
    shape = _parse_dims(bytes(view[4 : 4 + 4 * ndim]), ndim, name)
    expected = _expected_bytes(dtype, shape)
    received = len(view) - 4 - 4 * ndim
    if received != expected:
        raise _size_error(name, shape, dtype, expected, received)
    flat = np.frombuffer(view, dtype=dtype, count=math.prod(shape), offset=4 + 4 * ndim)
    return _to_native(flat.reshape(shape))


def read_upto(stream, n: int) -> bytearray:
    """Read at most ``n`` bytes in bounded chunks, so memory grows only with data really read."""
    out = bytearray()
    while len(out) < n:
        chunk = stream.read(min(n - len(out), _CHUNK))
        if not chunk:
            break
        out += chunk
    return out


def _readinto_full(stream, buf: memoryview) -> int:
    """Fill ``buf`` from ``stream``; return the number of bytes read (less only at EOF)."""
    n = 0
    while n < len(buf):
        if hasattr(stream, "readinto"):
            got = stream.readinto(buf[n : n + _CHUNK])
        else:
            data = stream.read(min(len(buf) - n, _CHUNK))
            got = len(data)
            buf[n : n + got] = data
        if not got:
            break
        n += got
    return n


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with bytes already consumed (the peeked magic) put back in front."""

    def __init__(self, head: bytes, stream):
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._stream.read(len(b))
        b[: len(data)] = data
        return len(data)


def _source_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", None) or type(source).__name__)


def _read_stream(f, name: str) -> np.ndarray:
    """Read an IDX array from the binary stream ``f`` (raw or gzip), checking sizes first."""
    seekable = f.seekable() if hasattr(f, "seekable") else False
    if seekable:
        start = f.tell()
        magic = f.read(2)
        f.seek(start)
    else:
        magic = bytes(read_upto(f, 2))  # a pipe may return fewer bytes than asked
        f = io.BufferedReader(_Prefixed(magic, f))
    compressed = magic == GZIP_MAGIC
    stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f

    dtype, ndim = parse_header(bytes(read_upto(stream, 4)), name)
    shape = _parse_dims(bytes(read_upto(stream, 4 * ndim)), ndim, name)
    expected = _expected_bytes(dtype, shape)

    if not compressed and seekable:
        # Raw file: its size is known, so compare before allocating anything.
        here = f.tell()
        available = f.seek(0, io.SEEK_END) - here
        f.seek(here)
        if available != expected:
            raise _size_error(name, shape, dtype, expected, available)
        arr = np.empty(shape, dtype=dtype)
        got = _readinto_full(f, memoryview(arr.reshape(-1).view(np.uint8)))
        if got != expected:
            raise _size_error(name, shape, dtype, expected, got)
        return _to_native(arr)

    # gzip (or a pipe): the size is unknown until decompressed. Read in bounded chunks up to
    # one byte past the expected count; a lying header then fails with the real data's size.
    data = read_upto(stream, expected + 1)
    if len(data) != expected:
        raise _size_error(name, shape, dtype, expected, len(data), streamed=True)
    flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape))
    return _to_native(flat.reshape(shape))


def read_idx(source) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed, detected from its first bytes).

    Args:
        source: a path (str or os.PathLike) or a binary file object opened for reading.

    Returns:
        The array, in native byte order, with the shape and dtype the header declares
        (uint8, int8, int16, int32, float32 or float64).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: bad magic, unknown dtype code, ndim 0 or above 8, truncated data,
            extra trailing bytes, or sizes in the header that the data do not match, or a
            corrupt gzip stream. Sizes are checked before the array is allocated.

    Example:
        >>> import io
        >>> read_idx(io.BytesIO(bytes([0, 0, 0x08, 2, 0, 0, 0, 1, 0, 0, 0, 2, 5, 6])))
        array([[5, 6]], dtype=uint8)
    """
    name = _source_name(source)
    try:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                return _read_stream(f, name)
        if not hasattr(source, "read"):
            raise TypeError(
                f"read_idx needs a path or a binary file object; received {type(source).__name__}."
            )
        return _read_stream(source, name)
    except (gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise ValueError(f"{name} is not a valid gzip stream (corrupt or truncated): {e}") from e


# ----- writing --------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_writer(path):
    """``cnnlab.utils.files.atomic_writer`` for data files, creating missing parent folders.

    Yields:
        ``(file, temp_path)``.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with _atomic_writer(path, suffix=".part") as pair:
        yield pair


def _idx_code(dtype: np.dtype) -> int | None:
    for code, dt in IDX_DTYPES.items():
        if dtype.kind == dt.kind and dtype.itemsize == dt.itemsize:
            return code
    return None


def write_idx(path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically (temporary file in the same folder, then
    ``os.replace``).

    Args:
        path: destination file.
        array: uint8, int8, int16, int32, float32 or float64 array with 1 to 8 dimensions,
            each below 2**32.
        compress: gzip the file; default: when the name ends with ``.gz``. Output is
            reproducible (the gzip timestamp is zero).

    Returns:
        The path written.

    Raises:
        TypeError: not an array, or a dtype IDX cannot hold (e.g. int64, bool, float16).
        ValueError: 0-d or more than 8 dimensions, or a dimension of 2**32 or more.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "a.idx.gz")
        >>> _ = write_idx(p, np.arange(6, dtype=np.int16).reshape(2, 3))
        >>> read_idx(p)
        array([[0, 1, 2],
               [3, 4, 5]], dtype=int16)
    """
    check_array(array, "write_idx array")
    code = _idx_code(array.dtype)
    if code is None:
        supported = ", ".join(d.name for d in IDX_DTYPES.values())
        raise TypeError(
            f"IDX cannot store dtype {array.dtype}; supported: {supported}. Convert first, "
            f"e.g. array.astype(np.int32) or array.astype(np.float32)."
        )
    if not 1 <= array.ndim <= MAX_NDIM:
        raise ValueError(f"write_idx needs an array with 1 to {MAX_NDIM} dimensions; received shape {array.shape}.")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX sizes are uint32; received shape {array.shape}.")
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    big = np.ascontiguousarray(array, dtype=IDX_DTYPES[code])  # (...) big-endian, C order
    payload = big.reshape(-1).view(np.uint8)  # (size * itemsize,) bytes, no copy
    with atomic_writer(path) as (f, _):
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=6, mtime=0) as gz:
                gz.write(header)
                gz.write(payload)
        else:
            f.write(header)
            f.write(payload)
    return path
