#!/usr/bin/env python
"""Fuzz cnnlab's file readers with hostile inputs and count crashes (there must be none).

Seven categories of input, each made by mutating valid files:

* ``model``: files written by ``model.save`` (zoo models) and ``fit(checkpoint=...)``,
  truncated, bit-flipped, with arrays swapped between keys, wrong shapes or dtypes, ``.npy``
  headers declaring huge sizes, keys added or removed, a pickled object array whose
  ``__reduce__`` would create a marker file, zip bombs (honest and with lying declared
  sizes) and hostile JSON headers. Readers: ``read_archive``, ``load_model`` (then a
  prediction), ``load_checkpoint`` and ``restore``.
* ``idx``: IDX files (raw and gzip) with bad magic, unknown dtype codes, lying dimensions
  that would allocate gigabytes, truncated data, trailing bytes and gzip garbage. Reader:
  ``read_idx`` from a path, a seekable and a non-seekable stream.
* ``images``: class folders with non-image files, zero-byte images, truncated or
  bit-flipped PNG/JPEG/BMP/GIF files and headers declaring huge dimensions. Readers:
  ``load_image_folder`` and ``load_image``.

Issue 11 added four classes:

* ``archive``: zip bombs split over hundreds of entries (each under the per-entry guard),
  entries the architecture or the header does not name, over-long entry lists. Readers:
  ``read_archive`` (a success must be within budget) and ``load_model``.
* ``formats``: every allowed raster format and formats Pillow knows but cnnlab refuses
  (PostScript/EPS, PDF, SVG, IM, QOI, SPIDER, ...), truncated, bit-flipped, behind an allowed
  magic, under any extension; read from a path, bytes and a file object. A fake ``gs`` (and
  ``convert``) first on PATH records any call: an external program starting is a crash, and
  so is a refused format that opens.
* ``architecture``: valid weights under an architecture declaring a huge padding, input,
  stride or pooling. ``load_model`` must refuse what needs more than
  ``cnnlab.models.budget.MAX_EXAMPLE_BYTES`` per example; affordable ones must predict.
* ``checkpoint``: a mid-epoch checkpoint with a hostile permutation (out of range, float,
  negative, repeated), batch, sums, epoch, history, callbacks, settings, optimizer step or
  generator state, resumed with ``fit(resume_from=...)``: a refusal after any weight or
  optimizer change is a crash.

Every case runs in-process under a ``signal.alarm`` timeout and an address-space limit (so
a hostile allocation fails fast instead of swapping the machine). An outcome is

* a *clean error*: a ``ValueError`` (``ModelFileError`` and ``ChecksumError`` included) or
  an exception type the reader documents (FileNotFoundError, NotADirectoryError);
* a *success*: the mutation was harmless and the reader returned a result;
* a *crash*: anything else, a timeout or a marker file written by unpickling.

Usage::

    python scripts/fuzz_files.py --cases 10500         # 1/7 of the cases per category
    python scripts/fuzz_files.py --cases 300 --seed 1 --category idx

``run(...)`` is the same fuzzer as a function; ``tests/reliability/test_fuzz_files.py``
runs a short version of it in CI.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import gzip
import io
import json
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CATEGORIES = ("model", "idx", "images", "archive", "formats", "architecture", "checkpoint")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# ===== bookkeeping ====================================================================================
@dataclass
class Stats:
    """Outcome counts of one category."""

    category: str
    tried: int = 0
    clean: int = 0
    ok: int = 0
    crashes: int = 0
    max_rss_growth_kb: int = 0
    max_seconds: float = 0.0
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    errors: Counter = field(default_factory=Counter)
    mutations: Counter = field(default_factory=Counter)
    crash_examples: list = field(default_factory=list)

    def row(self) -> str:
        return (f"{self.category:<8} {self.tried:>7} {self.clean:>7} {self.ok:>7} {self.crashes:>7} "
                f"{self.max_rss_growth_kb / 1024:>9.1f} {self.rss_end_kb / 1024 - self.rss_start_kb / 1024:>9.1f} "
                f"{self.max_seconds * 1000:>9.0f}")


HEADER = (f"{'category':<8} {'tried':>7} {'clean':>7} {'success':>7} {'crashes':>7} "
          f"{'maxRSS+':>9} {'RSSdrift':>9} {'max ms':>9}")


class CaseTimeout(BaseException):
    """Raised by the alarm: a case ran too long (a BaseException, so no reader swallows it)."""


def _on_alarm(signum, frame):
    raise CaseTimeout()


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so the next reading is the peak of one case."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_kb() -> int:
    """Peak resident memory since the last ``reset_peak_rss`` (or of the process), KiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def current_rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KB


def _trim_heap(collect: bool = True) -> None:
    """Give freed heap memory back to the OS (glibc keeps it otherwise), so RSS drift shows leaks."""
    if collect:
        gc.collect()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


@contextlib.contextmanager
def address_space_limit(extra_bytes: int):
    """Lower the soft RLIMIT_AS to the current size + ``extra_bytes`` (restored after), so a
    hostile allocation raises MemoryError at once instead of exhausting a shared machine."""
    if not extra_bytes:
        yield
        return
    try:
        with open("/proc/self/statm") as f:
            vsize = int(f.read().split()[0]) * PAGE_KB * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = vsize + extra_bytes
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_case(stats: Stats, mutation: str, fn, clean_types: tuple, timeout: int, memory_limit: int = 0) -> str:
    """Run ``fn()`` once under a ``timeout`` (seconds) and an address-space limit of the current
    size + ``memory_limit`` bytes (0: none), and classify the outcome ("clean", "ok" or "crash")."""
    stats.tried += 1
    stats.mutations[mutation] += 1
    reset_peak_rss()
    before = current_rss_kb()
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout)
    try:
        try:
            with address_space_limit(memory_limit):
                fn()
            outcome = "ok"
        finally:
            signal.alarm(0)
    except CaseTimeout:
        outcome, detail = "crash", f"timeout after {timeout} s"
    except clean_types as err:
        outcome = "clean"
        stats.errors[type(err).__name__] += 1
    except Exception as err:  # noqa: BLE001 - anything else is what we are looking for
        outcome = "crash"
        detail = f"{type(err).__name__}: {err}"[:300] + "\n" + "".join(traceback.format_tb(err.__traceback__)[-4:])
    finally:
        signal.signal(signal.SIGALRM, previous)
    elapsed = time.perf_counter() - t0
    stats.max_seconds = max(stats.max_seconds, elapsed)
    stats.max_rss_growth_kb = max(stats.max_rss_growth_kb, peak_rss_kb() - before)
    if outcome == "ok":
        stats.ok += 1
    elif outcome == "clean":
        stats.clean += 1
    else:
        stats.crashes += 1
        if len(stats.crash_examples) < 20:
            stats.crash_examples.append(f"[{stats.category}/{mutation}] {detail}")
    return outcome


# ===== helpers shared by the mutators =========================================================================
def npy_bytes(array, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_with_header(header: dict, data: bytes, version=(1, 0)) -> bytes:
    """A .npy file with an arbitrary header dict (which may lie about the data)."""
    text = repr(header)
    prefix = b"\x93NUMPY" + bytes(version)
    hlen_size = 2 if version == (1, 0) else 4
    total = len(prefix) + hlen_size + len(text) + 1
    pad = (64 - total % 64) % 64
    body = (text + " " * pad + "\n").encode("latin1")
    hlen = struct.pack("<H" if hlen_size == 2 else "<I", len(body))
    return prefix + hlen + body + data


def read_members(raw: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]


def build_zip(members, compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are one of the mutations
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return buf.getvalue()


def flip_bytes(raw: bytes, rng, k=None) -> bytes:
    b = bytearray(raw)
    if not b:
        return bytes(b)
    k = k or int(rng.integers(1, 9))
    for pos in rng.integers(0, len(b), size=k):
        b[pos] ^= int(rng.integers(1, 256))
    return bytes(b)


class Evil:
    """Unpickling this object would create the marker file: it must never happen."""

    marker = "/nonexistent"

    def __reduce__(self):
        return (open, (self.marker, "w"))


class NonSeekable(io.RawIOBase):
    """A pipe-like stream: read() only, no seek/tell."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        data = self._buf.read(min(len(b), 4096))
        b[: len(data)] = data
        return len(data)


# ===== model files ===============================================================================================
def model_seeds(work: Path) -> list[tuple[str, bytes]]:
    """Valid files to mutate: zoo models saved with model.save, and a training checkpoint."""
    from cnnlab.models import zoo

    seeds = []
    for name in ("ox_cnn", "lines_cnn", "lenet5", "bn_cnn", "keras_tutorial_cnn"):
        model = zoo.get_model(name, seed=0)
        path = model.save(work / f"{name}.npz")
        seeds.append((f"model:{name}", path.read_bytes()))
    # a checkpoint with optimizer state, rng, history, callbacks and a mid-epoch position
    from cnnlab.training.checkpoints import save_checkpoint

    model = zoo.lines_cnn(seed=0)
    model.compile("adam", lr=0.01)
    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 8, 8), dtype=np.float32)
    y = (np.arange(16) % 2).astype(np.int64)
    history = model.fit(x, y, epochs=1, batch_size=8, seed=0, verbose=0, doctor=False)
    path = save_checkpoint(work / "ckpt.npz", model, model.optimizer, 1, history, rng,
                           progress={"batch": 1, "permutation": np.arange(16), "sums": {"loss": 1.0, "correct": 3, "seen": 8}})
    seeds.append(("checkpoint:lines_cnn", path.read_bytes()))
    return seeds


HOSTILE_VALUES = [-1, 0, 2**31, 2**40, 2**63, -(2**63), 1.5, float("inf"), float("nan"), "3", None, True, [], {},
                  [3, 3, 3], [0, 0], "same", "../../etc/passwd", "x" * 10000, [[[[[]]]]], {"__class__": "os.system"}]


def _mutate_header(header: dict, rng) -> dict | list | str:
    h = json.loads(json.dumps(header))
    kind = int(rng.integers(0, 12))
    layers = h.get("model", {}).get("layers", [])
    if kind == 0 and layers:  # a hostile value for one setting of one layer
        entry = layers[int(rng.integers(0, len(layers)))]
        cfg = entry["config"]
        if cfg:
            key = sorted(cfg)[int(rng.integers(0, len(cfg)))]
            cfg[key] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
        else:
            cfg["unexpected"] = 1
    elif kind == 1 and layers:  # huge layer sizes (would allocate terabytes if trusted)
        for entry in layers:
            for key in ("in_channels", "out_channels", "in_features", "out_features", "num_features"):
                if key in entry["config"]:
                    entry["config"][key] = int(2 ** int(rng.integers(16, 40)))
    elif kind == 2 and layers:  # unknown or dangerous class names
        layers[int(rng.integers(0, len(layers)))]["class"] = str(rng.choice(
            ["Sequential", "Layer", "Parameter", "__import__", "eval", "os.system", "Conv3d", "", "Dense "]))
    elif kind == 3:
        h["dtype"] = str(rng.choice(["float16", "object", "int64", "", "float32 ", "<f4"]))
    elif kind == 4:
        h["version"] = int(rng.choice([0, 2, -1, 10**20]))
    elif kind == 5:
        h["format"] = str(rng.choice(["", "numpy", "pickle", "cnnlab2"]))
    elif kind == 6 and "model" in h:
        h["model"]["input_shape"] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
    elif kind == 7 and "model" in h:
        h["model"]["layers"] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
    elif kind == 8:
        return [h]  # top level not a dict
    elif kind == 9:
        return "[" * 100000 + "]" * 100000  # deep nesting
    elif kind == 10 and "optimizer" in h:  # hostile optimizer state in a checkpoint
        st = h["optimizer"]["state"]
        key = str(rng.choice(["name", "config", "step", "buffers", "counters"]))
        st[key] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
    elif kind == 11 and "rng" in h:
        h["rng"] = HOSTILE_VALUES[int(rng.integers(0, len(HOSTILE_VALUES)))]
    else:
        h.pop(str(rng.choice(sorted(h))), None)
    return h


def _bomb_member(declared: int, actual: int) -> bytes:
    """A zip with one deflated .npy member whose data inflate to ``actual`` bytes of zeros while
    the zip directory declares ``declared`` bytes (a lie when they differ)."""
    n = actual // 4
    header = npy_with_header({"descr": "<f4", "fortran_order": False, "shape": (n,)}, b"")
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunks = [comp.compress(header)]
    zero = bytes(1 << 20)
    left = n * 4
    crc = zlib.crc32(header)
    while left > 0:
        piece = zero[: min(left, len(zero))]
        chunks.append(comp.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    chunks.append(comp.flush())
    data = b"".join(chunks)
    size = len(header) + n * 4 if declared < 0 else declared
    name = b"model/0.weight.npy"
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(data), size & 0xFFFFFFFF, len(name), 0)
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc, len(data), size & 0xFFFFFFFF,
                          len(name), 0, 0, 0, 0, 0, 0)
    body = local + name + data
    cd = central + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(cd), len(body), 0)
    return body + cd + end


_BOMBS: dict = {}


def mutate_model(raw: bytes, rng, marker: Path) -> tuple[str, bytes]:
    members = read_members(raw)
    names = [n for n, _ in members]
    arrays = [i for i, n in enumerate(names) if n.startswith("model/")]
    header_i = names.index("__cnnlab__.npy")
    header = json.loads(np.load(io.BytesIO(members[header_i][1])).tobytes().decode())
    kind = str(rng.choice([
        "truncate", "flip", "flip_member", "swap_arrays", "wrong_shape", "wrong_dtype", "huge_npy_shape",
        "lying_npy_shape", "extra_key", "missing_key", "pickle_object", "zip_bomb", "header_json",
        "header_garbage", "duplicate_entry", "npy_version", "not_a_zip", "compressed_ok",
    ]))
    m = list(members)
    if kind == "truncate":
        return kind, raw[: int(rng.integers(0, len(raw)))]
    if kind == "flip":
        return kind, flip_bytes(raw, rng)
    if kind == "flip_member":  # corrupt inside a member, with a valid zip CRC (reaches the .npy parser)
        i = int(rng.integers(0, len(m)))
        n, data = m[i]
        head = int(rng.integers(0, 2))
        if head:  # in the .npy header
            b = bytearray(data)
            for pos in rng.integers(0, min(len(b), 128), size=int(rng.integers(1, 5))):
                b[pos] ^= int(rng.integers(1, 256))
            m[i] = (n, bytes(b))
        else:
            m[i] = (n, flip_bytes(data, rng))
        return kind, build_zip(m)
    if kind == "swap_arrays" and len(arrays) >= 2:
        i, j = rng.choice(arrays, size=2, replace=False)
        m[i], m[j] = (m[i][0], m[j][1]), (m[j][0], m[i][1])
        return kind, build_zip(m)
    if kind == "wrong_shape" and arrays:
        i = int(rng.choice(arrays))
        arr = np.load(io.BytesIO(m[i][1]))
        shape = tuple(int(s) for s in rng.integers(0, 6, size=int(rng.integers(0, 5))))
        m[i] = (m[i][0], npy_bytes(np.zeros(shape, arr.dtype)))
        return kind, build_zip(m)
    if kind == "wrong_dtype":
        i = int(rng.choice(arrays + [header_i]))
        arr = np.load(io.BytesIO(m[i][1]))
        dtype = rng.choice(["int32", "float64", "float16", "complex64", "bool", "<U3", "V8", "i8,f4", ">f4", "datetime64[s]"])
        try:
            new = arr.astype(dtype)
        except (TypeError, ValueError):
            new = np.zeros(arr.shape, dtype)
        m[i] = (m[i][0], npy_bytes(new))
        return kind, build_zip(m)
    if kind == "huge_npy_shape":  # declares up to 2**62 elements, holds the old data
        i = int(rng.choice(arrays + [header_i]))
        arr = np.load(io.BytesIO(m[i][1]))
        shape = tuple(int(2 ** int(rng.integers(20, 63))) for _ in range(int(rng.integers(1, 4))))
        m[i] = (m[i][0], npy_with_header({"descr": arr.dtype.str, "fortran_order": False, "shape": shape}, arr.tobytes()))
        return kind, build_zip(m)
    if kind == "lying_npy_shape":
        i = int(rng.choice(arrays + [header_i]))
        arr = np.load(io.BytesIO(m[i][1]))
        shape = (max(0, arr.size + int(rng.integers(-3, 4))),)
        order = bool(rng.integers(0, 2))
        m[i] = (m[i][0], npy_with_header({"descr": arr.dtype.str, "fortran_order": order, "shape": shape}, arr.tobytes()))
        return kind, build_zip(m)
    if kind == "extra_key":
        name = str(rng.choice(["model/99.weight.npy", "evil.txt", "../../etc/passwd.npy", "/abs.npy", "x/y/z.npy",
                               "model/0.weight.npy.npy", "optimizer/0.exp_avg.npy", "progress/permutation.npy"]))
        m.append((name, npy_bytes(np.zeros(int(rng.integers(0, 10)), np.float32))))
        return kind, build_zip(m)
    if kind == "missing_key":
        del m[int(rng.integers(0, len(m)))]
        return kind, build_zip(m)
    if kind == "pickle_object":
        Evil.marker = str(marker)
        payload = npy_bytes(np.array([Evil(), 1], dtype=object), allow_pickle=True)
        where = int(rng.integers(0, 3))
        if where == 0:
            m.append(("evil.npy", payload))
        elif where == 1 and arrays:
            i = int(rng.choice(arrays))
            m[i] = (m[i][0], payload)
        else:
            m[header_i] = (m[header_i][0], payload)
        return kind, build_zip(m)
    if kind == "zip_bomb":
        # honest (declares what it inflates to, 64-256 MiB, ratio ~1000) or lying (declares less
        # or more than the data inflate to)
        variant = int(rng.integers(0, 3))
        actual = int(rng.choice([64, 128, 256])) << 20
        declared = {0: -1, 1: 4096, 2: 1 << 30}[variant]
        key = (declared, actual)
        if key not in _BOMBS:
            _BOMBS[key] = _bomb_member(declared, actual)
        return f"zip_bomb_{['honest', 'lying_small', 'lying_large'][variant]}", _BOMBS[key]
    if kind == "header_json":
        new = _mutate_header(header, rng)
        text = new if isinstance(new, str) else json.dumps(new)
        m[header_i] = (m[header_i][0], npy_bytes(np.frombuffer(text.encode(), np.uint8)))
        return kind, build_zip(m)
    if kind == "header_garbage":
        junk = rng.integers(0, 256, size=int(rng.integers(0, 200)), dtype=np.uint8)
        m[header_i] = (m[header_i][0], npy_bytes(junk))
        return kind, build_zip(m)
    if kind == "duplicate_entry":
        i = int(rng.integers(0, len(m)))
        m.append(m[i])
        return kind, build_zip(m)
    if kind == "npy_version":
        i = int(rng.choice(arrays + [header_i]))
        arr = np.load(io.BytesIO(m[i][1]))
        version = [(2, 0), (3, 0), (9, 9), (0, 0)][int(rng.integers(0, 4))]
        try:
            data = npy_with_header({"descr": arr.dtype.str, "fortran_order": False, "shape": arr.shape},
                                   arr.tobytes(), version=version if version in ((1, 0), (2, 0)) else (2, 0))
        except struct.error:
            data = m[i][1]
        if version not in ((1, 0), (2, 0)):
            data = data[:6] + bytes(version) + data[8:]
        m[i] = (m[i][0], data)
        return kind, build_zip(m)
    if kind == "not_a_zip":
        choice = int(rng.integers(0, 4))
        data = [b"", npy_bytes(np.zeros(3)), bytes(rng.integers(0, 256, 1000, dtype=np.uint8)), build_zip([])][choice]
        return kind, data
    # compressed_ok: the same content, deflated (harmless; readers must accept or refuse cleanly)
    return "compressed_ok", build_zip(m, zipfile.ZIP_DEFLATED)


def model_readers(path: Path):
    from cnnlab.models.io import load_model, read_archive
    from cnnlab.training.checkpoints import load_checkpoint, restore

    def readers():
        read_archive(path)
        model = load_model(path)
        if model.input_shape is not None and len(model.layers):
            x = np.zeros((1, *model.input_shape), dtype=model.dtype or np.float32)
            model.predict(x)
        load_checkpoint(path)
        restore(path)

    return readers


# ===== IDX files =====================================================================================================
def idx_seeds() -> list[tuple[str, bytes]]:
    from cnnlab.datasets.idx import write_idx

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (5, 4, 3), dtype=np.uint8), rng.integers(0, 10, (7,), dtype=np.uint8),
              rng.integers(-100, 100, (2, 3), dtype=np.int16), rng.integers(-5, 5, (4,), dtype=np.int32),
              rng.random((2, 2, 2)).astype(np.float32), rng.random(3), rng.integers(-5, 5, (3, 1), dtype=np.int8)]
    seeds = []
    with tempfile.TemporaryDirectory() as d:
        for i, a in enumerate(arrays):
            for gz in (False, True):
                p = write_idx(Path(d) / f"a{i}.idx{'.gz' if gz else ''}", a)
                seeds.append((f"idx:{a.dtype}{'.gz' if gz else ''}", p.read_bytes()))
    return seeds


def _raw_idx(raw: bytes) -> tuple[bytes, bool]:
    if raw[:2] == b"\x1f\x8b":
        return gzip.decompress(raw), True
    return raw, False


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def mutate_idx(raw: bytes, rng) -> tuple[str, bytes]:
    plain, was_gz = _raw_idx(raw)
    ndim = plain[3]
    kind = str(rng.choice(["bad_magic", "bad_dtype", "bad_ndim", "huge_dims", "lying_dims", "truncate", "trailing",
                           "gzip_garbage", "gzip_truncated", "gzip_flip", "gzip_bomb_lying", "flip", "empty",
                           "gzip_multi_member", "gzip_trailing_garbage"]))
    p = bytearray(plain)

    def out(data, kind=kind):
        return kind, (_gz(bytes(data)) if was_gz else bytes(data))

    if kind == "bad_magic":
        p[int(rng.integers(0, 2))] = int(rng.integers(1, 256))
        return out(p)
    if kind == "bad_dtype":
        p[2] = int(rng.choice([0, 1, 7, 0x0A, 0x0F, 0xFF]))
        return out(p)
    if kind == "bad_ndim":
        p[3] = int(rng.choice([0, 9, 200, 255]))
        return out(p)
    if kind == "huge_dims":  # would allocate up to 2**32**ndim bytes if trusted
        for d in range(ndim):
            if rng.integers(0, 2) or d == 0:
                p[4 + 4 * d: 8 + 4 * d] = struct.pack(">I", int(rng.choice([2**31, 2**32 - 1, 65536, 10**9])))
        return out(p)
    if kind == "lying_dims":
        d = int(rng.integers(0, ndim))
        old = struct.unpack(">I", bytes(p[4 + 4 * d: 8 + 4 * d]))[0]
        p[4 + 4 * d: 8 + 4 * d] = struct.pack(">I", max(0, old + int(rng.choice([-2, -1, 1, 2]))))
        return out(p)
    if kind == "truncate":
        return out(p[: int(rng.integers(0, len(p)))])
    if kind == "trailing":
        return out(bytes(p) + bytes(rng.integers(0, 256, int(rng.integers(1, 50)), dtype=np.uint8)))
    if kind == "gzip_garbage":
        return kind, b"\x1f\x8b" + bytes(rng.integers(0, 256, int(rng.integers(0, 200)), dtype=np.uint8))
    if kind == "gzip_truncated":
        z = _gz(bytes(p))
        return kind, z[: int(rng.integers(2, len(z)))]
    if kind == "gzip_flip":
        z = bytearray(_gz(bytes(p)))
        for pos in rng.integers(10, len(z), size=int(rng.integers(1, 4))):
            z[pos] ^= int(rng.integers(1, 256))
        return kind, bytes(z)
    if kind == "gzip_bomb_lying":  # header declares 2**33 bytes; the stream inflates to 16 MiB of zeros
        if "idx_bomb_gz" not in _BOMBS:
            head = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2**11, 2**11, 2**11)
            _BOMBS["idx_bomb_gz"] = gzip.compress(head + bytes(16 << 20), compresslevel=9, mtime=0)
        return kind, _BOMBS["idx_bomb_gz"]
    if kind == "flip":
        return out(flip_bytes(bytes(p), rng))
    if kind == "empty":
        return kind, b""
    if kind == "gzip_multi_member":  # valid gzip: two members concatenated (data then trailing bytes)
        half = int(rng.integers(0, len(p)))
        return kind, _gz(bytes(p[:half])) + _gz(bytes(p[half:]) + (b"x" if rng.integers(0, 2) else b""))
    return kind, _gz(bytes(p)) + bytes(rng.integers(1, 256, int(rng.integers(1, 20)), dtype=np.uint8))


def idx_readers(path: Path, data: bytes):
    from cnnlab.datasets.idx import read_idx

    def readers():
        read_idx(path)
        read_idx(io.BytesIO(data))
        read_idx(io.BufferedReader(NonSeekable(data)))

    return readers


# ===== image folders ========================================================================================================
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) declares width x height, with a tiny, short IDAT."""
    ihdr = struct.pack(">2I5B", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(1000))
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def huge_gif(width: int, height: int) -> bytes:
    head = b"GIF89a" + struct.pack("<2H3B", width, height, 0x80, 0, 0) + bytes(6)
    desc = b"\x2c" + struct.pack("<4HB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00\x3b"
    return head + desc


def huge_bmp(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    head = struct.pack("<2sIHHI", b"BM", 14 + 40 + 100, 0, 0, 54)
    return head + info + bytes(100)


def huge_jpeg(base_jpeg: bytes, width: int, height: int) -> bytes:
    """Patch the SOF0 frame header of a baseline JPEG to declare width x height."""
    b = bytearray(base_jpeg)
    i = b.find(b"\xff\xc0")
    if i < 0:
        return bytes(b)
    b[i + 5: i + 9] = struct.pack(">2H", min(height, 65535), min(width, 65535))
    return bytes(b)


def image_seed_files() -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    files = {}

    def save(name, img, **kw):
        buf = io.BytesIO()
        img.save(buf, **kw)
        files[name] = buf.getvalue()

    gray = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8))
    rgb = Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
    save("a.png", gray, format="PNG")
    save("b.jpg", rgb, format="JPEG")
    save("c.bmp", rgb, format="BMP")
    save("d.gif", gray.convert("P"), format="GIF", transparency=0)
    save("e.png", Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)), format="PNG")  # RGBA
    save("f.png", Image.fromarray(rng.integers(0, 65535, (7, 7), dtype=np.uint16)), format="PNG")  # 16-bit
    return files


def make_image_case(root: Path, seeds: dict[str, bytes], rng, huge_side: int = 9000) -> str:
    """A class folder tree under ``root`` with 1-3 mutated files; returns the mutation names.

    ``huge_side``: side of the images that declare a large size still under Pillow's limit
    (9000: 81 megapixels, decoded before failing); smaller makes the run faster."""
    names = sorted(seeds)
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for name in rng.choice(names, size=2, replace=False):
            (root / cls / str(name)).write_bytes(seeds[str(name)])
    kinds = []
    for _ in range(int(rng.integers(1, 4))):
        cls = str(rng.choice(["cat", "dog"]))
        files = sorted(f for f in (root / cls).iterdir() if f.is_file() and not f.is_symlink())
        target = files[int(rng.integers(0, len(files)))] if files else root / cls / "new.png"
        kind = str(rng.choice(["truncate", "flip", "zero_bytes", "text", "huge_png", "huge_png_bomb", "huge_gif",
                               "huge_bmp", "huge_jpeg", "wrong_extension", "dir_named_png", "empty_class",
                               "hidden_and_other_files", "symlink_dev_zero", "symlink_loop", "garbage"]))
        kinds.append(kind)
        data = target.read_bytes() if target.is_file() else b""
        if kind == "truncate":
            target.write_bytes(data[: int(rng.integers(0, max(1, len(data))))])
        elif kind == "flip":
            target.write_bytes(flip_bytes(data, rng, int(rng.integers(1, 20))))
        elif kind == "zero_bytes":
            target.write_bytes(b"")
        elif kind == "text":
            target.write_text("this is not an image\n")
        elif kind == "huge_png":  # under Pillow's pixel limit: decoded (and fails, truncated) at 81 MB
            (root / cls / "huge.png").write_bytes(huge_png(int(rng.choice([huge_side, 4000, 65535])),
                                                           int(rng.choice([huge_side, 100, 1]))))
        elif kind == "huge_png_bomb":  # far above the limit: refused before decoding
            (root / cls / "bomb.png").write_bytes(huge_png(int(rng.choice([100000, 2**31 - 1])), 100000))
        elif kind == "huge_gif":
            (root / cls / "huge.gif").write_bytes(huge_gif(65535, int(rng.choice([65535, 1000]))))
        elif kind == "huge_bmp":
            (root / cls / "huge.bmp").write_bytes(huge_bmp(int(rng.choice([huge_side, 2**20, 2**31 - 1])),
                                                           int(rng.choice([huge_side, -huge_side, 1]))))
        elif kind == "huge_jpeg":
            (root / cls / "huge.jpg").write_bytes(huge_jpeg(seeds["b.jpg"], int(rng.choice([huge_side, 65535])),
                                                            int(rng.choice([huge_side, 65535]))))
        elif kind == "wrong_extension":
            target.rename(target.with_suffix(str(rng.choice([".jpg", ".png", ".gif", ".bmp", ".jpeg"]))))
        elif kind == "dir_named_png":
            (root / cls / "folder.png").mkdir(exist_ok=True)
        elif kind == "empty_class":
            (root / "empty_class").mkdir(exist_ok=True)
            (root / "empty_class" / "notes.txt").write_text("no images here")
        elif kind == "hidden_and_other_files":
            (root / cls / ".hidden.png").write_bytes(b"junk")
            (root / cls / "readme.txt").write_text("text")
            (root / ".hidden_class").mkdir(exist_ok=True)
        elif kind == "symlink_dev_zero":
            with contextlib.suppress(OSError):
                os.symlink("/dev/zero", root / cls / "zero.png")
        elif kind == "symlink_loop":
            with contextlib.suppress(OSError):
                os.symlink(root / cls / "loop.png", root / cls / "loop.png")
        else:
            target.write_bytes(bytes(rng.integers(0, 256, int(rng.integers(1, 2000)), dtype=np.uint8)))
    return "+".join(sorted(set(kinds)))


def image_readers(root: Path, rng):
    from cnnlab.datasets import load_image, load_image_folder

    grayscale = bool(rng.integers(0, 2))
    mnist_like = bool(rng.integers(0, 2))

    def readers():
        x, y, classes = load_image_folder(root, image_size=8, grayscale=grayscale)
        if len(x) != len(y) or len(classes) < 1:
            raise AssertionError("inconsistent result")
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif") and p.is_file():
                load_image(p, image_size=8, mnist_like=mnist_like)

    return readers


# ===== class 1: archive budget (zip bombs split over many entries, entry counts, unnamed entries) ===================
def raw_zip(entries) -> bytes:
    """A zip from ``(name, method, payload, crc, size)`` entries, payloads already compressed: the
    same compressed block can stand for hundreds of entries without compressing it again."""
    body, central = b"", b""
    for name, method, payload, crc, size in entries:
        n = name.encode()
        offset = len(body)
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(payload), size, len(n), 0)
        body += n + payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(payload), size,
                               len(n), 0, 0, 0, 0, 0, offset) + n
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return body + central + end


_ZERO_NPY: dict = {}


def zero_npy_deflated(nbytes: int) -> tuple[bytes, int, int]:
    """(deflated payload, crc, size) of a float32 .npy of ``nbytes`` zero bytes (cached)."""
    if nbytes not in _ZERO_NPY:
        data = npy_bytes(np.zeros(nbytes // 4, np.float32))
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        _ZERO_NPY[nbytes] = (comp.compress(data) + comp.flush(), zlib.crc32(data), len(data))
    return _ZERO_NPY[nbytes]


def split_bomb(header_npy: bytes, n_entries: int, entry_bytes: int, names) -> bytes:
    """A valid cnnlab header plus ``n_entries`` deflated all-zero arrays of ``entry_bytes`` each,
    each below the per-entry bomb threshold, together inflating ~1000x."""
    payload, crc, size = zero_npy_deflated(entry_bytes)
    entries = [("__cnnlab__.npy", 0, header_npy, zlib.crc32(header_npy), len(header_npy))]
    entries += [(f"{names(i)}.npy", 8, payload, crc, size) for i in range(n_entries)]
    return raw_zip(entries)


def mutate_archive(raw: bytes, rng) -> tuple[str, bytes]:
    members = read_members(raw)
    header_npy = dict(members)["__cnnlab__.npy"]
    kind = str(rng.choice(["split_bomb_model_names", "split_bomb_unnamed", "split_bomb_listed", "many_entries",
                           "unnamed_small", "unnamed_model_key", "deflated_honest"]))
    if kind.startswith("split_bomb"):
        n = int(rng.integers(20, 400))
        size = int(rng.choice([1, 4, 15])) << 20
        if kind == "split_bomb_model_names":
            names = lambda i: f"model/{i}.weight"  # noqa: E731
        elif kind == "split_bomb_listed":  # names the header lists (a hostile writer can list anything)
            header = json.loads(np.load(io.BytesIO(header_npy)).tobytes().decode())
            header["arrays"] = sorted(set(header.get("arrays", [])) | {f"extra/{i}" for i in range(n)})
            header_npy = npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
            names = lambda i: f"extra/{i}"  # noqa: E731
        else:
            names = lambda i: f"junk/{i}"  # noqa: E731
        return kind, split_bomb(header_npy, n, size, names)
    m = list(members)
    if kind == "many_entries":
        small = npy_bytes(np.zeros(1, np.uint8))
        m += [(f"x/{i}.npy", small) for i in range(int(rng.choice([500, 10_001, 12_000])))]
        return kind, build_zip(m)
    if kind == "unnamed_small":
        m.append((str(rng.choice(["junk.npy", "optimizer/evil.npy", "callbacks/9/x.npy"])), npy_bytes(np.zeros(3))))
        return kind, build_zip(m)
    if kind == "unnamed_model_key":
        m.append((str(rng.choice(["model/99.weight.npy", "model/0.gamma.npy", "model/x.npy"])),
                  npy_bytes(np.zeros(3, np.float32))))
        return kind, build_zip(m)
    return kind, build_zip(m, zipfile.ZIP_DEFLATED)


def archive_readers(path: Path):
    from cnnlab.models.io import MAX_MEMBERS, load_model, read_archive

    def readers():
        header, arrays = read_archive(path)  # a success must be within budget
        if len(arrays) + 1 > MAX_MEMBERS or sum(a.nbytes for a in arrays.values()) > 256 << 20:
            raise AssertionError(f"read an archive over budget: {len(arrays)} arrays")
        load_model(path)

    return readers


# ===== class 2: image formats (only allowed raster formats; never an external program) ==========================
FAKE_GS_DIR: Path | None = None


def install_fake_ghostscript(work: Path) -> Path:
    """Put a ``gs`` first on PATH that records being called in ``<work>/GS_CALLED``: Pillow's EPS
    plugin runs ``gs``, so the marker appearing means an image started an external program."""
    global FAKE_GS_DIR
    FAKE_GS_DIR = work / "fakebin"
    FAKE_GS_DIR.mkdir(exist_ok=True)
    for name in ("gs", "gswin32c", "gswin64c", "convert", "magick"):
        tool = FAKE_GS_DIR / name
        tool.write_text(f"#!/bin/sh\necho \"$0 $*\" >> '{work / 'GS_CALLED'}'\nexit 1\n")
        tool.chmod(0o755)
    os.environ["PATH"] = f"{FAKE_GS_DIR}{os.pathsep}{os.environ.get('PATH', '')}"
    with contextlib.suppress(Exception):  # forget a Ghostscript Pillow may have looked up already
        from PIL import EpsImagePlugin

        EpsImagePlugin.gs_binary = None
    return work / "GS_CALLED"


EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n%%EndComments\n"
       b"0 0 moveto 28 28 lineto stroke showpage\n%%EOF\n")


def format_seed_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(allowed, refused): one small file per allowed format and per format Pillow can write
    (or recognise) that cnnlab must refuse."""
    from PIL import Image

    rng = np.random.default_rng(0)
    gray = Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8))
    rgb = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))

    def enc(img, fmt, **kw):
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        return buf.getvalue()

    allowed = {"png": enc(gray, "PNG"), "jpeg": enc(rgb, "JPEG"), "bmp": enc(rgb, "BMP"), "gif": enc(gray, "GIF"),
               "tiff": enc(rgb, "TIFF"), "tiff_lzw": enc(gray, "TIFF", compression="tiff_lzw"),
               "webp": enc(rgb, "WEBP"), "ppm": enc(rgb, "PPM"), "pgm": enc(gray, "PPM"), "ico": enc(rgb, "ICO")}
    refused = {"eps": EPS, "ps": b"%!PS-Adobe-2.0\n" + EPS[24:], "eps_binary": b"\xc5\xd0\xd3\xc6" + bytes(26) + EPS,
               "pdf": b"%PDF-1.4\n" + bytes(100), "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
               "xml": b"<?xml version='1.0'?><svg/>"}
    for fmt in ("PCX", "TGA", "SGI", "IM", "XBM", "ICNS", "DDS", "MSP", "SPIDER", "QOI", "BLP", "PDF", "EPS"):
        with contextlib.suppress(Exception):
            img = gray if fmt in ("PCX", "SGI", "IM", "SPIDER", "EPS") else rgb
            if fmt in ("XBM", "MSP"):
                img = gray.convert("1")
            if fmt == "SPIDER":
                img = gray.convert("F")
            if fmt == "EPS":
                continue  # EPS written by Pillow needs no gs; the hand-made one above is the threat
            refused[fmt.lower() + "_pillow"] = enc(img, fmt)
    return allowed, refused


def mutate_format(allowed: dict, refused: dict, rng) -> tuple[str, bytes, bool, str]:
    """(mutation, data, must_refuse, file name)."""
    kind = str(rng.choice(["refused_format", "refused_format", "allowed_format", "allowed_flipped",
                           "allowed_truncated", "magic_prefix_garbage", "polyglot_png_then_eps"]))
    ext = str(rng.choice([".png", ".jpg", ".bmp", ".gif", ".tif", ".webp", ".pgm", ".ico", ".eps", ""]))
    if kind == "refused_format":
        name = sorted(refused)[int(rng.integers(0, len(refused)))]
        return f"refused:{name}", refused[name], True, "img" + ext
    name = sorted(allowed)[int(rng.integers(0, len(allowed)))]
    data = allowed[name]
    if kind == "allowed_format":
        return f"allowed:{name}", data, False, "img" + ext
    if kind == "allowed_flipped":
        return f"allowed_flipped:{name}", data[:8] + flip_bytes(data[8:], rng, int(rng.integers(1, 10))), False, \
            "img" + ext
    if kind == "allowed_truncated":
        return f"allowed_truncated:{name}", data[: int(rng.integers(1, len(data)))], False, "img" + ext
    if kind == "magic_prefix_garbage":  # an allowed magic followed by garbage or by PostScript
        magic = str(rng.choice(["png", "jpeg", "bmp", "gif", "tiff", "ico", "pgm"]))
        head = allowed[magic][: int(rng.integers(2, 16))]
        tail = EPS if rng.integers(0, 2) else bytes(rng.integers(0, 256, 300, dtype=np.uint8))
        return f"magic_prefix:{magic}", head + tail, False, "img" + ext
    return "polyglot", EPS + allowed["png"], True, "img.png"


def format_readers(case_dir: Path, data: bytes, must_refuse: bool, name: str):
    from cnnlab.datasets import load_image, load_image_folder
    from cnnlab.datasets.images import open_untrusted_image

    path = case_dir / name
    path.write_bytes(data)
    (case_dir / "root" / "a").mkdir(parents=True)
    (case_dir / "root" / "a" / ("x" + (Path(name).suffix or ".png"))).write_bytes(data)

    def readers():
        results = []
        for source in (path, data, io.BytesIO(data)):
            try:
                results.append(open_untrusted_image(source))
            except ValueError:
                results.append(None)
        if must_refuse and any(r is not None for r in results):
            raise AssertionError("a refused format was opened")
        load_image(path, image_size=8)
        load_image_folder(case_dir / "root", image_size=8, extensions=(Path(name).suffix or ".png",))

    return readers


# ===== class 3: architectures implying huge computations ==========================================================
def mutate_architecture(raw: bytes, rng) -> tuple[str, bytes]:
    """A valid model file whose architecture (weights unchanged, so the weight check passes)
    declares a huge padding, input, stride or pooling; or a harmless change."""
    m = read_members(raw)
    names = [n for n, _ in m]
    hi = names.index("__cnnlab__.npy")
    header = json.loads(np.load(io.BytesIO(m[hi][1])).tobytes().decode())
    cfg = header["model"]
    layers = cfg["layers"]
    kind = str(rng.choice(["padding", "input_shape", "input_and_padding", "pool", "stride", "small_change"]))
    convs = [e for e in layers if e["class"] == "Conv2d"]
    if kind in ("padding", "input_and_padding") and convs:
        conv = convs[int(rng.integers(0, len(convs)))]
        conv["config"]["padding"] = int(rng.choice([30_000, 2**15, 2**19, int(rng.integers(0, 5000))]))
    if kind in ("input_shape", "input_and_padding") and cfg.get("input_shape"):
        c = cfg["input_shape"][0]
        side = [int(rng.choice([1048575, 65536, 16384, 4096, int(rng.integers(1, 3000))])) for _ in range(2)]
        cfg["input_shape"] = [c, *side]
    if kind == "pool":
        for e in layers:
            if e["class"] in ("MaxPool2d", "AvgPool2d"):
                e["config"]["kernel_size"] = int(rng.choice([1, 2**20, 0]))
                e["config"]["padding"] = int(rng.choice([0, 2**16]))
    if kind == "stride" and convs:
        convs[0]["config"]["stride"] = int(rng.choice([1, 2**20]))
    if kind == "small_change" and convs:
        convs[0]["config"]["padding"] = int(rng.integers(0, 3))
    m[hi] = (m[hi][0], npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8)))
    return kind, build_zip(m)


def fcn_seed(work: Path) -> bytes:
    from cnnlab.layers import Conv2d, Flatten, MaxPool2d, ReLU
    from cnnlab.models import Sequential

    model = Sequential([Conv2d(1, 4, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Conv2d(4, 2, 3, rng=0), Flatten()],
                       input_shape=(1, 8, 8), name="fcn")
    return model.save(work / "fcn.npz").read_bytes()


def architecture_readers(path: Path):
    from cnnlab.models.io import load_model
    from cnnlab.models.budget import MAX_EXAMPLE_BYTES, example_bytes

    def readers():
        model = load_model(path)
        if model.input_shape is None:
            return
        need = example_bytes(model)
        if need > MAX_EXAMPLE_BYTES:
            raise AssertionError(f"loaded a model needing {need} bytes per example")
        if need < 64 << 20:  # run the affordable ones: they must work
            model.predict(np.zeros((1, *model.input_shape), dtype=model.dtype))

    return readers


# ===== class 5: hostile checkpoints (validated whole before any state changes) ==================================
CKPT_DATA = {}


def checkpoint_seed(work: Path) -> bytes:
    """A mid-epoch checkpoint of a small BatchNorm + Dropout CNN with a schedule (all state kinds)."""
    from cnnlab.training.callbacks import EarlyStopping
    from cnnlab.training.schedules import StepDecay
    from cnnlab.training.checkpoints import save_checkpoint

    model = _ckpt_model()
    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 8, 8), dtype=np.float32)
    y = (np.arange(24) % 2).astype(np.int64)
    CKPT_DATA.update(x=x, y=y)
    callbacks = [StepDecay(1, 0.5), EarlyStopping("loss", patience=5, restore_best_weights=True)]
    history = model.fit(x, y, epochs=1, batch_size=8, seed=0, verbose=0, doctor=False, callbacks=callbacks)
    from cnnlab.training import FitConfig
    from cnnlab.training.loop import run_settings

    settings = run_settings(FitConfig(epochs=3, batch_size=8, seed=0, verbose=0, doctor=False), model.optimizer,
                             callbacks, 24, 0)
    path = save_checkpoint(work / "seed_ckpt.npz", model, model.optimizer, 1, history, rng, config=settings,
                           callbacks=callbacks,
                           progress={"batch": 1, "permutation": rng.permutation(24),
                                     "sums": {"loss": 0.7, "correct": 5, "seen": 8}})
    return path.read_bytes()


def _ckpt_model():
    from cnnlab.layers import BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
    from cnnlab.models import Sequential

    model = Sequential([Conv2d(1, 3, 3, padding=1, rng=0), BatchNorm2d(3), ReLU(), MaxPool2d(2), Flatten(),
                        Dropout(0.2, rng=0), Dense(48, 2, rng=0)], input_shape=(1, 8, 8), name="fuzz_ckpt")
    model.compile("adam", lr=0.01)
    return model


CKPT_HOSTILE = [-1, 0, 1, 3, 2**40, -(2**63), 1.5, float("nan"), float("inf"), "3", None, True, [], {}, [1, 2],
                {"loss": "x"}, [[1]], "x" * 5000]


def mutate_checkpoint(raw: bytes, rng) -> tuple[str, bytes]:
    m = read_members(raw)
    names = [n for n, _ in m]
    hi = names.index("__cnnlab__.npy")
    header = json.loads(np.load(io.BytesIO(m[hi][1])).tobytes().decode())

    def hostile():
        return CKPT_HOSTILE[int(rng.integers(0, len(CKPT_HOSTILE)))]

    kind = str(rng.choice(["perm_values", "perm_dtype", "perm_shape", "batch", "sums", "epoch", "history",
                           "history_curve", "callbacks", "callback_state", "config", "optimizer_step", "rng",
                           "progress_type", "valid"]))
    if kind.startswith("perm"):
        pi = names.index("progress/permutation.npy")
        perm = np.load(io.BytesIO(m[pi][1]))
        if kind == "perm_values":
            perm = perm.copy()
            perm[int(rng.integers(0, len(perm)))] = int(rng.choice([-1, 24, 2**40, 0, perm[0]]))
        elif kind == "perm_dtype":
            perm = perm.astype(str(rng.choice(["float64", "float32", "bool", "uint8", "int8"])))
        else:
            perm = perm[: int(rng.integers(0, len(perm)))] if rng.integers(0, 2) else perm.reshape(4, 6)
        m[pi] = (m[pi][0], npy_bytes(perm))
    elif kind == "batch":
        header["progress"]["batch"] = hostile() if rng.integers(0, 2) else int(rng.choice([3, 4, 100, -1]))
    elif kind == "sums":
        key = str(rng.choice(["loss", "correct", "seen", "extra"]))
        header["progress"]["sums"][key] = hostile()
    elif kind == "epoch":
        header["epoch"] = hostile()
    elif kind == "history":
        header["history"] = hostile()
    elif kind == "history_curve":
        curves = header["history"]["history"]
        key = sorted(curves)[int(rng.integers(0, len(curves)))] if curves else "loss"
        curves[key] = hostile()
    elif kind == "callbacks":
        header["callbacks"] = hostile()
    elif kind == "callback_state":
        entry = header["callbacks"][int(rng.integers(0, len(header["callbacks"])))]
        if entry["state"]:
            key = sorted(entry["state"])[int(rng.integers(0, len(entry["state"])))]
            entry["state"][key] = hostile()
        else:
            entry["state"] = hostile()
    elif kind == "config":
        key = str(rng.choice(["batch_size", "validation_split", "seed", "augment", "samples", "shuffle"]))
        header["config"][key] = hostile()
    elif kind == "optimizer_step":
        header["optimizer"]["state"]["step"] = hostile()
    elif kind == "rng":
        header["rng"]["state"] = hostile()
    elif kind == "progress_type":
        header["progress"] = hostile()
    m[hi] = (m[hi][0], npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8)))
    return kind, build_zip(m)


def checkpoint_readers(path: Path):
    from cnnlab.training.callbacks import EarlyStopping
    from cnnlab.training.schedules import StepDecay

    def readers():
        model = _ckpt_model()
        before = {k: v.copy() for k, v in model.state_dict().items()}
        opt_before = json.dumps(model.optimizer.get_config())
        try:
            model.fit(CKPT_DATA["x"], CKPT_DATA["y"], epochs=3, batch_size=8, seed=0, verbose=0, doctor=False,
                      callbacks=[StepDecay(1, 0.5), EarlyStopping("loss", patience=5, restore_best_weights=True)],
                      resume_from=path)
        except ValueError:
            changed = [k for k, v in model.state_dict().items() if not np.array_equal(v, before[k], equal_nan=True)]
            if changed or json.dumps(model.optimizer.get_config()) != opt_before:
                raise AssertionError(f"refused after changing state: {changed[:3]}") from None
            raise

    return readers


# ===== driver ===================================================================================================================
def run(cases: int = 300, seed: int = 0, categories=CATEGORIES, timeout: int = 10, memory_limit_gb: float = 3.0,
        verbose: bool = False, huge_side: int = 9000) -> tuple[list[Stats], bool]:
    """Fuzz ``cases`` inputs split evenly over ``categories``; returns (stats, marker_appeared).

    ``huge_side``: see ``make_image_case`` (the CI run uses a smaller one to stay fast)."""
    # clean errors are ValueErrors: ModelFileError and ChecksumError are subclasses
    per = max(1, cases // len(categories))
    results = []
    work = Path(tempfile.mkdtemp(prefix="cnnlab-fuzz-"))
    marker = work / "PICKLE_RAN_CODE"
    warnings.filterwarnings("ignore")  # Pillow and NumPy warn about the broken files; outcomes are what count
    try:
        seeds_model = model_seeds(work) if "model" in categories else []
        seeds_idx = idx_seeds() if "idx" in categories else []
        seeds_img = image_seed_files() if "images" in categories else {}
        gs_marker = install_fake_ghostscript(work)  # any image starting Ghostscript leaves this file
        seeds_fmt = format_seed_files() if "formats" in categories else ({}, {})
        seeds_arch = [r for label, r in model_seeds(work) if label.startswith("model:")] \
            if ("archive" in categories or "architecture" in categories) else []
        if seeds_arch:  # a fully-convolutional model: any padding or input keeps its shapes consistent
            seeds_arch += [fcn_seed(work)] * 2
        seed_ckpt = checkpoint_seed(work) if "checkpoint" in categories else b""
        limit = int(memory_limit_gb * 1024**3)
        for ci, cat in enumerate(CATEGORIES):
            if cat not in categories:
                continue
            stats = Stats(cat)
            _trim_heap()
            stats.rss_start_kb = current_rss_kb()
            for i in range(per):
                rng = np.random.default_rng([seed, ci, i])
                case_dir = work / f"{cat}-{i}"
                case_dir.mkdir()
                if cat == "model":
                    label, raw = seeds_model[int(rng.integers(0, len(seeds_model)))]
                    kind, data = mutate_model(raw, rng, marker)
                    path = case_dir / "m.npz"
                    path.write_bytes(data)
                    run_case(stats, kind, model_readers(path), (ValueError,), timeout, limit)
                elif cat == "idx":
                    label, raw = seeds_idx[int(rng.integers(0, len(seeds_idx)))]
                    kind, data = mutate_idx(raw, rng)
                    path = case_dir / "a.idx"
                    path.write_bytes(data)
                    run_case(stats, kind, idx_readers(path, data), (ValueError,), timeout, limit)
                elif cat == "images":
                    kind = make_image_case(case_dir / "root", seeds_img, rng, huge_side)
                    run_case(stats, kind, image_readers(case_dir / "root", rng),
                             (ValueError, FileNotFoundError, NotADirectoryError), timeout, limit)
                elif cat == "archive":
                    kind, data = mutate_archive(seeds_arch[int(rng.integers(0, len(seeds_arch)))], rng)
                    path = case_dir / "m.npz"
                    path.write_bytes(data)
                    run_case(stats, kind, archive_readers(path), (ValueError,), timeout, limit)
                elif cat == "formats":
                    kind, data, must_refuse, name = mutate_format(*seeds_fmt, rng)
                    run_case(stats, kind, format_readers(case_dir, data, must_refuse, name), (ValueError,), timeout,
                             limit)
                elif cat == "architecture":
                    kind, data = mutate_architecture(seeds_arch[int(rng.integers(0, len(seeds_arch)))], rng)
                    path = case_dir / "m.npz"
                    path.write_bytes(data)
                    run_case(stats, kind, architecture_readers(path), (ValueError,), timeout, limit)
                else:
                    kind, data = mutate_checkpoint(seed_ckpt, rng)
                    path = case_dir / "c.npz"
                    path.write_bytes(data)
                    run_case(stats, kind, checkpoint_readers(path), (ValueError,), timeout, limit)
                if gs_marker.exists():
                    stats.crashes += 1
                    stats.crash_examples.append(f"[{cat}/{kind}] an external program ran: {gs_marker.read_text()}")
                    gs_marker.unlink()
                shutil.rmtree(case_dir, ignore_errors=True)
                if cat == "images":
                    _trim_heap(collect=False)  # decoded images leave large freed blocks glibc would keep
                if verbose and (i + 1) % 100 == 0:
                    print(f"  {cat}: {i + 1}/{per}", file=sys.stderr, flush=True)
            _trim_heap()
            stats.rss_end_kb = current_rss_kb()
            results.append(stats)
        return results, marker.exists()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if FAKE_GS_DIR is not None:
            os.environ["PATH"] = os.environ["PATH"].replace(f"{FAKE_GS_DIR}{os.pathsep}", "", 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=5000, help="total inputs, split over the categories")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=10, help="seconds per case before it counts as a crash")
    parser.add_argument("--memory-limit-gb", type=float, default=3.0, help="address space a case may add")
    parser.add_argument("--category", choices=CATEGORIES, action="append", help="only these categories")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    stats, marker = run(args.cases, args.seed, tuple(args.category or CATEGORIES), args.timeout, args.memory_limit_gb,
                        verbose=True)
    print(f"python scripts/fuzz_files.py --cases {args.cases} --seed {args.seed} --timeout {args.timeout}   "
          f"({time.perf_counter() - t0:.0f} s)")
    print("maxRSS+: largest peak RSS of one case above the RSS before it (MiB); RSSdrift: resident "
          "memory after the category minus before (MiB); max ms: slowest case")
    print(HEADER)
    for s in stats:
        print(s.row())
    total = sum(s.crashes for s in stats)
    print(f"crashes: {total}; pickle marker file created: {marker}")
    for s in stats:
        print(f"{s.category} clean errors by type: {dict(s.errors.most_common())}")
        print(f"{s.category} mutations: {dict(sorted(s.mutations.items()))}")
        for example in s.crash_examples:
            print("CRASH", example)
    return 1 if total or marker else 0


if __name__ == "__main__":
    sys.exit(main())
