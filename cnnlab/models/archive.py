"""The model file format, without pickle (``cnnlab.models.io.load_model`` builds the model): a model file is a ``.npz`` archive holding a JSON header
(architecture, metadata) stored as UTF-8 bytes, and plain numeric arrays.

Two promises:
    * Nothing is lost: writes go to a temp file in the same folder, are flushed to disk and
      renamed into place (``os.replace`` is atomic), so a crash leaves the old file intact.
    * A file from a stranger cannot run code or exhaust memory: ``allow_pickle=False``, only
      numeric dtypes, and every array's declared size is checked against limits and against
      the archive's own sizes *before* it is read; a compressed member may not inflate more
      than ``MAX_COMPRESSION_RATIO`` times (zip bombs), and an architecture may not declare
      far more weights than the file holds (``load_model`` refuses it before allocating).
      A process killed mid-write can leave a ``.<name>.*.tmp`` file beside the target, never
      a torn target.
"""
from __future__ import annotations

import json
import struct
import tokenize
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from cnnlab.layers import LAYER_CLASSES
from cnnlab.utils.files import atomic_writer, check_writable_folder, fsync_dir

FORMAT_NAME = "cnnlab"
FORMAT_VERSION = 1
HEADER_KEY = "__cnnlab__"
#: dtypes a model file may hold; anything else (objects, strings, structured) is refused
ALLOWED_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                         "uint8", "uint16", "uint32", "uint64", "bool")}
MAX_ARRAY_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_HEADER_BYTES = 64 * 1024**2
#: entries an archive may hold (a model has 2-4 per layer; an Adam checkpoint about 3x that)
MAX_MEMBERS = 10_000
_READ_CHUNK = 1 << 24  # bytes per read of an array member
#: a compressed member above _BOMB_MIN_BYTES may inflate at most this many times
MAX_COMPRESSION_RATIO = 100
_BOMB_MIN_BYTES = 16 * 1024**2
#: the compressed entries of one archive, together, may inflate to at most
#: MAX_COMPRESSION_RATIO x their compressed size + this much (zero biases compress well)
_ARCHIVE_SLACK_BYTES = 1024**2
#: header entries that ``write_archive`` itself sets; a caller's header may not hold them
RESERVED_HEADER_KEYS = ("format", "version", "arrays")


class ModelFileError(ValueError):
    """A model or checkpoint file is missing, truncated, corrupted, hostile or of another version."""


# ----- writing ---------------------------------------------------------------------------
def write_archive(path, header: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write ``header`` (JSON-serializable) and ``arrays`` to ``path`` as ``.npz``.

    Raises:
        ValueError: a key is reserved or an array has a dtype outside ``ALLOWED_DTYPES``.
        OSError: the folder is missing or unwritable, or the disk is full (the old file, if
            any, is left untouched and no temp file remains).
    """
    path = Path(path)
    if not isinstance(header, dict):
        raise TypeError(f"header must be a dict of JSON-serializable entries; received {type(header).__name__}.")
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of name -> numpy array; received {type(arrays).__name__}.")
    if HEADER_KEY in arrays:
        raise ValueError(f"array key {HEADER_KEY!r} is reserved.")
    reserved = sorted(k for k in header if k in RESERVED_HEADER_KEYS)
    if reserved:
        raise ValueError(f"header keys {reserved} are reserved (cnnlab writes {list(RESERVED_HEADER_KEYS)} itself); "
                         f"rename them.")
    for key, value in arrays.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"array names must be non-empty strings; received {key!r}.")
        if not isinstance(value, np.ndarray) or value.dtype not in ALLOWED_DTYPES:
            got = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            raise ValueError(f"cannot save array {key!r}: only numeric arrays are stored; received {got}.")
    # the header lists the arrays, so a reader can refuse entries nobody wrote before inflating them
    payload = _header_bytes({**header, "arrays": sorted(arrays)})
    check_writable_folder(path, "cannot save to")
    with atomic_writer(path) as (f, _):
        np.savez(f, **{HEADER_KEY: np.frombuffer(payload, dtype=np.uint8)}, **arrays)
    fsync_dir(path.parent if str(path.parent) else Path("."))
    return path


def _header_bytes(header: dict) -> bytes:
    """The JSON header as UTF-8; a TypeError naming the first entry JSON cannot hold."""
    try:
        return json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, **header}, allow_nan=True).encode("utf-8")
    except (TypeError, ValueError) as err:
        for key, value in header.items():
            try:
                json.dumps(value, allow_nan=True)
            except (TypeError, ValueError):
                raise TypeError(
                    f"cannot save header entry {key!r}: entries must be JSON-serializable (numbers, strings, "
                    f"lists, dicts; arrays go in the arrays); received {type(value).__name__} ({err})."
                ) from None
        raise TypeError(f"cannot save the header: {err}") from None


# ----- reading ---------------------------------------------------------------------------
def read_archive(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a file written by ``write_archive``; returns ``(header, arrays)``.

    Raises:
        ModelFileError: for a missing, truncated, corrupted, hostile or other-version file,
            with the reason. Never executes code from the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"no model file at {path}.")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_zip(zf, path)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, LookupError,
            UnicodeDecodeError, NotImplementedError, RuntimeError, TypeError, ArithmeticError,
            SyntaxError, tokenize.TokenError, struct.error) as err:
        # NumPy parses a .npy header with tokenize and ast.literal_eval: a corrupted header can
        # raise any of their errors, which all mean the same thing here.
        raise ModelFileError(f"{path} is not a valid cnnlab model file (truncated or corrupted?): {err}") from None


def _read_zip(zf: zipfile.ZipFile, path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    infos = zf.infolist()
    _check_budget(infos, path)
    header_info = next((i for i in infos if i.filename == HEADER_KEY + ".npy"), None)
    if header_info is None:
        raise ModelFileError(f"{path} has no cnnlab header: it is not a cnnlab model file.")
    header = _parse_header(_read_member(zf, header_info, path), path)
    _check_names(infos, header, path)  # before inflating any array
    arrays: dict[str, np.ndarray] = {}
    for info in infos:
        if info is not header_info:
            arrays[info.filename[:-4]] = _read_member(zf, info, path)
    return header, arrays


def _check_budget(infos: list, path: Path) -> None:
    """Refuse an archive whose directory alone shows it is hostile, before inflating anything:
    too many entries, duplicates, non-array entries, too many bytes in all, or compressed
    entries that together inflate more than ``MAX_COMPRESSION_RATIO`` times (a zip bomb split
    over many entries, each harmless on its own)."""
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"{path} holds {len(infos)} entries; at most {MAX_MEMBERS} expected.")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise ModelFileError(f"{path} holds duplicate entries.")
    for info in infos:
        if not info.filename.endswith(".npy"):
            raise ModelFileError(f"{path} holds an unexpected entry {info.filename!r}.")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        raise ModelFileError(f"{path} declares more than {MAX_TOTAL_BYTES} bytes of data; refusing to load.")
    packed = [i for i in infos if i.compress_type != zipfile.ZIP_STORED]
    inflated, compressed = sum(i.file_size for i in packed), sum(i.compress_size for i in packed)
    if inflated > MAX_COMPRESSION_RATIO * compressed + _ARCHIVE_SLACK_BYTES:
        raise ModelFileError(
            f"{path}: its {len(packed)} compressed entries inflate {compressed} bytes to {inflated}, more than "
            f"{MAX_COMPRESSION_RATIO} times; refusing a possible zip bomb (cnnlab writes arrays uncompressed)."
        )
    # cnnlab stores arrays uncompressed; weights barely compress. A large member that
    # inflates hundreds of times is a zip bomb: a few MB of file costing GB of memory.
    for info in packed:
        if info.file_size > _BOMB_MIN_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise ModelFileError(
                f"{path}: entry {info.filename!r} inflates {info.compress_size} compressed bytes to "
                f"{info.file_size}, more than {MAX_COMPRESSION_RATIO} times; refusing a possible zip bomb."
            )


def _parse_header(raw: np.ndarray, path: Path) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path} has no cnnlab header: it is not a cnnlab model file.")
    header = json.loads(raw.tobytes().decode("utf-8"))
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} is not a cnnlab model file (its header is a JSON {type(header).__name__}, "
                             f"not an object).")
    if header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{path} is not a cnnlab model file (format {_short(header.get('format'))}).")
    if header.get("version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} is format version {_short(header.get('version'))}; this cnnlab reads version {FORMAT_VERSION}. "
            f"Upgrade cnnlab or re-save the model."
        )
    return header


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error quotes hostile values, never megabytes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _check_names(infos: list, header: dict, path: Path) -> None:
    """Every entry must be named: ``model/...`` entries by the architecture in the header, the
    others by the header's list of arrays (files written before that list only by the budget)."""
    expected = _model_keys(header.get("model"))
    listed = header.get("arrays")
    listed = set(listed) if isinstance(listed, list) and all(isinstance(k, str) for k in listed) else None
    for info in infos:
        key = info.filename[:-4]
        if key == HEADER_KEY:
            continue
        if key.startswith("model/"):
            if expected is not None and key[len("model/"):] not in expected:
                raise ModelFileError(f"{path} holds unexpected keys: {key!r} is not named by its architecture.")
        elif listed is not None and key not in listed:
            raise ModelFileError(f"{path} holds unexpected keys: {key!r} is not listed in its header.")


def _model_keys(config) -> set[str] | None:
    """The state keys (``"<index>.<attribute>"``) the layers of ``config`` may hold, from the
    classes alone (nothing is built); None when the config is not readable (load_model refuses it)."""
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return None
    keys = set()
    for i, entry in enumerate(layers):
        cls = LAYER_CLASSES.get(entry.get("class")) if isinstance(entry, dict) and isinstance(entry.get("class"), str) \
            else None
        if cls is None:
            return None
        keys.update(f"{i}.{n}" for n in (*cls.param_names, *cls.buffer_names))
    return keys


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    limit = MAX_HEADER_BYTES if info.filename == HEADER_KEY + ".npy" else MAX_ARRAY_BYTES
    with zf.open(info) as f:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ModelFileError(f"{path}: entry {info.filename!r} has unsupported .npy version {version}.")
        if dtype not in ALLOWED_DTYPES:
            raise ModelFileError(f"{path}: entry {info.filename!r} has dtype {dtype}; only numeric arrays are allowed.")
        count = 1
        for dim in shape:
            count *= int(dim)
        nbytes = count * dtype.itemsize
        # Compare the declared size with the limits and with what the archive says it holds
        # before allocating anything: a lying header must not cost memory.
        if nbytes > limit:
            raise ModelFileError(f"{path}: entry {info.filename!r} declares {nbytes} bytes; the limit is {limit}.")
        data_bytes = info.file_size - f.tell()
        if nbytes != data_bytes:
            raise ModelFileError(
                f"{path}: entry {info.filename!r} declares shape {shape} ({nbytes} bytes) but holds {data_bytes} bytes."
            )
        # Read straight into the final array, in chunks: one allocation of the (checked) declared
        # size, never a second full-size bytes object beside it.
        array = np.empty(count, dtype=dtype)
        view = memoryview(array).cast("B") if nbytes else memoryview(b"")
        got = 0
        while got < nbytes:
            n = f.readinto(view[got:got + _READ_CHUNK])
            if not n:
                raise ModelFileError(f"{path}: entry {info.filename!r} is truncated.")
            got += n
    order = "F" if fortran else "C"
    return array.reshape(shape, order=order)


# ----- models ----------------------------------------------------------------------------
#: values a config may declare beyond twice what its file holds before loading is refused unbuilt
_SIZE_KEYS = ("in_channels", "out_channels", "in_features", "out_features", "num_features")


def declared_weight_count(config) -> int:
    """A lower bound on the number of values the layers in ``config`` allocate: the product of
    their size settings (channels, features, and the kernel area of a layer with channels).
    Settings that are not positive ints are skipped (the layer's constructor refuses them)."""

    def pos_int(v):
        return isinstance(v, int) and not isinstance(v, bool) and v > 0

    layers = config.get("layers") if isinstance(config, dict) else None
    total = 0
    for entry in layers if isinstance(layers, list) else []:
        cfg = entry.get("config") if isinstance(entry, dict) else None
        if not isinstance(cfg, dict):
            continue
        sizes = [cfg[k] for k in _SIZE_KEYS if pos_int(cfg.get(k))]
        if not sizes:
            continue
        count = 1
        for v in sizes:
            count *= v
        kernel = cfg.get("kernel_size")
        if "in_channels" in cfg and kernel is not None:
            pair = [kernel, kernel] if not isinstance(kernel, list) else kernel
            if len(pair) == 2 and all(pos_int(v) for v in pair):
                count *= pair[0] * pair[1]
        total += count
    return total


def save_model(model, path, *, extra: dict | None = None, extra_arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Save a ``Sequential`` model's architecture and weights (and optional extras) to ``path``.

    Args:
        model: the model.
        path: destination file (``.npz`` archive; any suffix is kept as given).
        extra: more JSON-serializable header entries (e.g. training state); the keys
            ``format``, ``version``, ``arrays``, ``model`` and ``dtype`` are reserved (ValueError).
        extra_arrays: more arrays, keys must not start with ``"model/"``.
    """
    reserved = sorted(k for k in (extra or {}) if k in (*RESERVED_HEADER_KEYS, "model", "dtype"))
    if reserved:
        raise ValueError(f"extra keys {reserved} are reserved: the file needs them for the model itself "
                         f"({', '.join(RESERVED_HEADER_KEYS)}, model, dtype); rename them, e.g. 'my_{reserved[0]}'.")
    arrays = {f"model/{k}": np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    for key, value in (extra_arrays or {}).items():
        if key.startswith("model/"):
            raise ValueError(f"extra array key {key!r} may not start with 'model/'.")
        arrays[key] = value
    header = {"kind": "model", "model": model.get_config(), "dtype": str(model.dtype), **(extra or {})}
    return write_archive(path, header, arrays)
