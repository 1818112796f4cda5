"""IDX reading and writing: round trips, exact bytes, and every way a file can be wrong."""
from __future__ import annotations

import gzip
import io
import os
import tracemalloc

import numpy as np
import pytest

from cnnlab.datasets import idx as idx_module
from cnnlab.datasets.idx import read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = {1: (7,), 2: (3, 5), 3: (2, 3, 4), 4: (2, 1, 3, 2)}


def _sample(dtype, shape, rng):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        flat = a.reshape(-1)
        flat[0], flat[-1] = info.min, info.max  # the extremes catch sign and byte-order slips
        return a
    a = rng.standard_normal(shape).astype(dtype) * dtype.type(1e3)
    flat = a.reshape(-1)
    flat[0], flat[-1] = np.finfo(dtype).max, -np.finfo(dtype).tiny
    return a


def _idx_bytes(code: int, dims, payload: bytes = b"") -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes() + payload


def _no_temp_files(folder) -> bool:
    return not [n for n in os.listdir(folder) if n.endswith(".part")]


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip_every_dtype_and_rank(tmp_path, dtype, ndim, compress):
    rng = np.random.default_rng(ndim)
    a = _sample(dtype, SHAPES[ndim], rng)
    path = write_idx(tmp_path / "a.idx", a, compress=compress)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == compress
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable
    assert _no_temp_files(tmp_path)


def test_exact_bytes_big_endian(tmp_path):
    path = write_idx(tmp_path / "x.idx", np.array([1, -2], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x00, 0x01, 0xFF, 0xFE])
    path = write_idx(tmp_path / "y.idx", np.array([[1.5]], dtype=np.float32))
    assert path.read_bytes() == bytes([0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0x3F, 0xC0, 0, 0])


def test_reads_big_endian_input_arrays_and_non_contiguous(tmp_path):
    a = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    b = read_idx(write_idx(tmp_path / "a.idx", a))
    np.testing.assert_array_equal(b, [[0, 2], [4, 6], [8, 10]])
    assert b.dtype == np.int32 and b.dtype.isnative


def test_compression_is_detected_from_magic_not_name(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    raw_named_gz = write_idx(tmp_path / "raw.gz", a, compress=False)
    gz_named_raw = write_idx(tmp_path / "gz.idx", a, compress=True)
    assert raw_named_gz.read_bytes()[:2] == b"\x00\x00"
    assert gz_named_raw.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)
    np.testing.assert_array_equal(read_idx(gz_named_raw), a)
    # default: compress when the name ends with .gz; output is reproducible (mtime 0)
    p1 = write_idx(tmp_path / "d1.idx.gz", a)
    p2 = write_idx(tmp_path / "d2.idx.gz", a)
    assert p1.read_bytes()[:2] == b"\x1f\x8b" and p1.read_bytes() == p2.read_bytes()


class _PipeLike:
    """A stream with read() only: not seekable, like a socket or a pipe."""

    def __init__(self, data: bytes):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(min(n, 3) if n and n > 0 else n)  # short reads, to exercise the loops


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_reads_file_objects_and_pipes(compress):
    a = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 12
    data = _idx_bytes(0x0B, a.shape, a.astype(">i2").tobytes())
    if compress:
        data = gzip.compress(data)
    np.testing.assert_array_equal(read_idx(io.BytesIO(data)), a)
    np.testing.assert_array_equal(read_idx(_PipeLike(data)), a)


def test_reads_the_shipped_mnist_header():
    from cnnlab.datasets.mnist import SHIPPED_DIR
    y = read_idx(SHIPPED_DIR / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert y.shape == (10000,) and y.dtype == np.uint8
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


# ----- malformed files ----------------------------------------------------------------------
BAD_FILES = {
    "bad magic": (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "two zero bytes"),
    "gzip-free garbage": (b"hello world", "two zero bytes"),
    "unknown dtype": (_idx_bytes(0x0A, (1,), b"\x00"), "unknown IDX dtype code 0x0A"),
    "ndim 0": (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    "ndim 9": (_idx_bytes(0x08, (1,) * 9, b"\x00"), "9 dimensions"),
    "short header": (b"\x00\x00\x08", "at least 4 bytes"),
    "short dims": (bytes([0, 0, 0x08, 2, 0, 0, 0, 1]), "truncated"),
    "truncated data": (_idx_bytes(0x0C, (2, 3), b"\x00" * 23), "truncated"),
    "trailing bytes": (_idx_bytes(0x08, (2, 2), b"\x00" * 7), "unexpected trailing bytes"),
    "empty": (b"", "at least 4 bytes"),
}


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_malformed_files_raise_clear_errors(tmp_path, case, compress):
    data, message = BAD_FILES[case]
    if compress:
        data = gzip.compress(data)
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message):
        read_idx(path)
    with pytest.raises(ValueError, match=message):
        read_idx(io.BytesIO(data))


def test_error_names_the_file_and_sizes(tmp_path):
    path = tmp_path / "named.idx"
    path.write_bytes(_idx_bytes(0x08, (4,), b"\x00"))
    with pytest.raises(ValueError, match="named.idx.*shape \\(4,\\) of uint8, i.e. 4 data bytes.*holds 1 "):
        read_idx(path)
    path.write_bytes(_idx_bytes(0x08, (4,), b"\x00" * 7))
    with pytest.raises(ValueError, match="holds 7: 3 unexpected trailing bytes"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dims", [(2**31, 2**31), (2**20, 2**10), (2**32 - 1,) * 8], ids=["2^62", "2^30", "8-d"])
def test_lying_dimensions_fail_fast_without_allocating(tmp_path, dims, compress):
    data = _idx_bytes(0x0E, dims, b"\x00" * 64)
    if compress:
        data = gzip.compress(data)
    path = tmp_path / "liar.idx"
    path.write_bytes(data)
    tracemalloc.start()  # NumPy reports its allocations to tracemalloc
    try:
        with pytest.raises(ValueError, match="truncated"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the header claims at least 8 GiB; reading may use bounded (1 MiB) chunks, nothing more
    assert peak < 8 * 2**20, f"reading a lying header allocated {peak} bytes"


def test_corrupt_and_truncated_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(0x08, (1000,), bytes(range(256)) * 3 + bytes(232)))
    path = tmp_path / "cut.gz"
    path.write_bytes(good[: len(good) - 12])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)
    broken = bytearray(good)
    broken[20] ^= 0xFF
    path.write_bytes(bytes(broken))
    with pytest.raises(ValueError, match="gzip"):
        read_idx(path)


def test_read_idx_rejects_other_sources(tmp_path):
    with pytest.raises(TypeError, match="path or a binary file object"):
        read_idx(123)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")


# ----- writing --------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.arange(3, dtype=np.int64), np.ones(3, dtype=bool), np.ones(3, np.float16),
                                 np.ones(3, np.uint16)], ids=["int64", "bool", "float16", "uint16"])
def test_write_rejects_unsupported_dtypes(tmp_path, bad):
    with pytest.raises(TypeError, match="IDX cannot store dtype"):
        write_idx(tmp_path / "a.idx", bad)
    assert os.listdir(tmp_path) == []


def test_write_rejects_bad_ranks(tmp_path):
    with pytest.raises(ValueError, match="1 to 8 dimensions"):
        write_idx(tmp_path / "a.idx", np.array(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="1 to 8 dimensions"):
        write_idx(tmp_path / "a.idx", np.zeros((1,) * 9, dtype=np.uint8))
    with pytest.raises(TypeError, match="numpy.ndarray"):
        write_idx(tmp_path / "a.idx", [1, 2, 3])


def test_write_is_atomic(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "a.idx.gz", np.arange(5, dtype=np.uint8))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(idx_module.gzip.GzipFile, "write", fail)
    with pytest.raises(OSError, match="disk full"):
        write_idx(path, np.arange(100, dtype=np.uint8))
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["a.idx.gz"]  # and no temporary file is left


def test_write_creates_folders_and_empty_arrays(tmp_path):
    path = write_idx(tmp_path / "new" / "deep" / "e.idx", np.zeros((0, 3), dtype=np.float32))
    b = read_idx(path)
    assert b.shape == (0, 3) and b.dtype == np.float32
