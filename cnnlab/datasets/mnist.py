"""MNIST and its drop-in relatives (Fashion-MNIST, Kuzushiji-MNIST), loaded like Keras.

``load_mnist()`` returns ``(x_train, y_train), (x_test, y_test)`` exactly as
``keras.datasets.mnist.load_data()`` does: images uint8 of shape (N, 28, 28) with values
0..255, labels uint8 of shape (N,) with values 0..9 (any integer dtype works with cnnlab's
losses; use ``y.astype(np.int64)`` if you prefer).

Where the files come from, first match wins:

1. the ``path=`` argument: a folder holding the four IDX files;
2. the environment variable ``CNNLAB_MNIST_DIR`` (``CNNLAB_FASHION_MNIST_DIR``,
   ``CNNLAB_KMNIST_DIR`` for the others);
3. for MNIST only, the copy shipped inside the package (so everything works offline);
4. the cache folder ``~/.cache/cnnlab/<name>`` (root overridable with ``CNNLAB_CACHE_DIR`` or
   ``cache_dir=``), downloading into it from the known mirrors when ``download=True``.

An explicit ``path=`` or environment variable that lacks the files is an error, never
silently skipped. Each file may be gzip-compressed (``train-images-idx3-ubyte.gz``) or not
(``train-images-idx3-ubyte``). Every load checks the decompressed size, the IDX magic
number, dtype and shape; with ``verify=True`` (default) it also checks MD5 checksums: of the
decompressed contents where known (MNIST), else of the ``.gz`` file as published
(Fashion-MNIST, KMNIST; a decompressed copy of those is then checked for structure only).
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnlab.datasets.download import ChecksumError, fetch_files, md5_bytes, md5_file
from cnnlab.datasets.idx import GZIP_MAGIC, decode_idx, read_upto

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
SHIPPED_DIR = Path(__file__).resolve().parent / "_data"
CACHE_ENV_VAR = "CNNLAB_CACHE_DIR"


@dataclass(frozen=True)
class IdxFileInfo:
    """One file of a dataset.

    Attributes:
        filename: name as published, e.g. ``"train-images-idx3-ubyte.gz"``.
        shape: array shape the file must hold (dtype is always uint8).
        gz_md5: MD5 of the ``.gz`` file as served by the mirrors (checked on download).
        md5: MD5 of the decompressed file, when known.
    """

    filename: str
    shape: tuple[int, ...]
    gz_md5: str | None
    md5: str | None = None

    @property
    def raw_name(self) -> str:
        """The decompressed file name (``filename`` without ``.gz``)."""
        return self.filename[:-3] if self.filename.endswith(".gz") else self.filename

    @property
    def nbytes(self) -> int:
        """Size of the decompressed IDX file: 4-byte magic, 4 bytes per size, then the data."""
        return 4 + 4 * len(self.shape) + math.prod(self.shape)


@dataclass(frozen=True)
class DatasetInfo:
    """A downloadable MNIST-format dataset: its files, mirrors, classes and license."""

    name: str
    title: str
    files: dict[str, IdxFileInfo]  # role (see ROLES) -> file
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]
    homepage: str
    license: str

    @property
    def env_var(self) -> str:
        """Environment variable naming a folder that holds this dataset."""
        return f"CNNLAB_{self.name.upper()}_DIR"


def _files(md5s: dict[str, tuple[str, str | None]]) -> dict[str, IdxFileInfo]:
    names = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
             "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
    shapes = {"train_images": (60000, 28, 28), "train_labels": (60000,),
              "test_images": (10000, 28, 28), "test_labels": (10000,)}
    return {role: IdxFileInfo(names[role], shapes[role], *md5s[role]) for role in ROLES}


#: name -> dataset description. MD5s: (of the .gz as published, of the decompressed file).
DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST",
        files=_files({
            "train_images": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
            "train_labels": ("d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624"),
            "test_images": ("9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
            "test_labels": ("ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637"),
        }),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        classes=tuple("0123456789"),
        homepage="http://yann.lecun.com/exdb/mnist/",
        license="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes, Christopher J. C. Burges)",
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title="Fashion-MNIST",
        files=_files({
            "train_images": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", None),
            "train_labels": ("25c81989df183df01b3e8a0aad5dffbe", None),
            "test_images": ("bef4ecab320f06d8554ea6380940ec79", None),
            "test_labels": ("bb300cfdad3c16e7a12a480ee83cd310", None),
        }),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                 "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"),
        classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT (Zalando SE)",
    ),
    "kmnist": DatasetInfo(
        name="kmnist",
        title="Kuzushiji-MNIST",
        files=_files({
            "train_images": ("bdb82020997e1d708af4cf47b453dcf7", None),
            "train_labels": ("e144d726b3acfaa3e44228e80efcd344", None),
            "test_images": ("5c965bf0a639b31b8f53240b1b52f4d7", None),
            "test_labels": ("7320c461ea6c1c855c0b718fb2a4b134", None),
        }),
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
        homepage="https://github.com/rois-codh/kmnist",
        license="CC BY-SA 4.0 (ROIS-DS Center for Open Data in the Humanities)",
    ),
}


def dataset_info(kind: str) -> DatasetInfo:
    """Look up a dataset by name (``"mnist"``, ``"fashion_mnist"`` or ``"kmnist"``; case and
    ``-``/``_`` do not matter).

    Example:
        >>> dataset_info("Fashion-MNIST").classes[:2]
        ('T-shirt/top', 'Trouser')
    """
    key = str(kind).lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset kind {kind!r}; known: {', '.join(DATASETS)}.")
    return DATASETS[key]


def cache_folder(name: str, cache_dir=None) -> Path:
    """Folder where dataset ``name`` is cached: ``<root>/<name>`` with root ``cache_dir``, else
    ``$CNNLAB_CACHE_DIR``, else ``~/.cache/cnnlab``."""
    root = cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV_VAR) or "~/.cache/cnnlab"
    return Path(root).expanduser() / name


# ----- locating the files ---------------------------------------------------------------
def _find(folder: Path, f: IdxFileInfo) -> Path | None:
    for name in (f.filename, f.raw_name):
        if (folder / name).is_file():
            return folder / name
    return None


def _missing(folder: Path, info: DatasetInfo) -> list[str]:
    return [f.filename for f in info.files.values() if _find(folder, f) is None]


def _explicit_folder(folder, info: DatasetInfo, origin: str) -> Path:
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"{info.title} folder {folder} ({origin}) does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(
            f"{info.title} {origin} must be a folder holding the four IDX files; received the file {folder}."
        )
    missing = _missing(folder, info)
    if missing:
        raise FileNotFoundError(
            f"{info.title} folder {folder} ({origin}) lacks {', '.join(missing)} "
            f"(each may also be stored decompressed, without .gz)."
        )
    return folder


def _resolve_folder(info: DatasetInfo, path, download: bool, cache_dir) -> Path:
    if path is not None:
        return _explicit_folder(path, info, "path=")
    env = os.environ.get(info.env_var)
    if env:
        return _explicit_folder(env, info, f"${info.env_var}")
    shipped = SHIPPED_DIR / info.name
    if shipped.is_dir() and not _missing(shipped, info):
        return shipped
    cache = cache_folder(info.name, cache_dir)
    if cache.is_dir() and not _missing(cache, info):
        return cache
    if download:
        fetch_files(info.title, {f.filename: f.gz_md5 for f in info.files.values()}, info.mirrors, cache)
        return cache
    raise FileNotFoundError(
        f"{info.title} not found (looked for path=, ${info.env_var}"
        f"{', the shipped copy' if info.name == 'mnist' else ''} and the cache {cache}). "
        f"Pass download=True to fetch it from {info.mirrors[0]}, or pass path= (or set "
        f"${info.env_var}) to a folder holding {', '.join(f.filename for f in info.files.values())}."
    )


# ----- reading and checking one file ----------------------------------------------------
def _read_decompressed(path: Path, limit: int) -> tuple[bytearray, bool]:
    """The file's decompressed bytes (at most ``limit`` + 1 of them) and whether it was gzip."""
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == GZIP_MAGIC
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f, mode="rb") if compressed else f
            return read_upto(stream, limit + 1), compressed
    except (gzip.BadGzipFile, zlib.error, EOFError) as e:
        raise ValueError(f"{path} is not a valid gzip file (corrupt or truncated): {e}") from e


def _load_file(path: Path, f: IdxFileInfo, info: DatasetInfo, verify: bool) -> np.ndarray:
    raw, compressed = _read_decompressed(path, f.nbytes)
    if len(raw) != f.nbytes:
        size = str(len(raw)) if len(raw) < f.nbytes else f"more than {f.nbytes}"  # reading stopped at +1
        raise ValueError(
            f"{info.title} file {path} holds {size} bytes after decompression; expected exactly "
            f"{f.nbytes} (an IDX array of shape {f.shape}). The file is truncated or is not the right "
            f"file; delete it and fetch it again."
        )
    if verify:
        if f.md5 is not None and (digest := md5_bytes(raw)) != f.md5:
            raise ChecksumError(
                f"{info.title} file {path} is corrupted: MD5 of its decompressed contents is {digest}, "
                f"expected {f.md5}. Replace it with a fresh copy (or pass verify=False to load it anyway)."
            )
        if f.md5 is None and f.gz_md5 is not None and compressed and (digest := md5_file(path)) != f.gz_md5:
            raise ChecksumError(
                f"{info.title} file {path} is corrupted: its MD5 is {digest}, expected {f.gz_md5} "
                f"(the published .gz). Replace it with a fresh copy (or pass verify=False to load it anyway)."
            )
    arr = decode_idx(raw, str(path))
    if arr.dtype != np.uint8 or arr.shape != f.shape:
        raise ValueError(
            f"{info.title} file {path} holds an array of shape {arr.shape} and dtype {arr.dtype}; "
            f"expected shape {f.shape} and dtype uint8. Is it the right file?"
        )
    return arr


def load_mnist(path=None, *, kind: str = "mnist", verify: bool = True, download: bool = False,
               cache_dir=None):
    """Load MNIST (or ``kind="fashion_mnist"`` / ``"kmnist"``) like ``keras.datasets.mnist``.

    Args:
        path: folder holding the four IDX files (gzip or decompressed); see the module
            docstring for where the files are looked for when None.
        kind: ``"mnist"``, ``"fashion_mnist"`` or ``"kmnist"`` (see ``DATASETS``).
        verify: check MD5 checksums (sizes, magic numbers and shapes are always checked).
        download: when the files are found nowhere else, download them into the cache.
        cache_dir: cache root (default ``$CNNLAB_CACHE_DIR`` or ``~/.cache/cnnlab``); the
            files live in ``<cache_dir>/<kind>``.

    Returns:
        ``(x_train, y_train), (x_test, y_test)``.

    Shape:
        - x_train: (60000, 28, 28) uint8, 0..255 (0 is background)
        - y_train: (60000,) uint8, 0..9
        - x_test: (10000, 28, 28) uint8
        - y_test: (10000,) uint8

    Raises:
        FileNotFoundError: the files are nowhere to be found (the message says where it
            looked and how to fix it), or ``path=`` / the environment variable lacks some.
        ChecksumError (a ValueError): a file's MD5 differs from the known one.
        ValueError: wrong size, not IDX, wrong shape or dtype, labels outside 0..9.
        DownloadError: ``download=True`` and no mirror delivered a file.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_mnist()
        >>> x_train.shape, x_train.dtype, y_test.shape, int(y_train[0])
        ((60000, 28, 28), dtype('uint8'), (10000,), 5)
    """
    info = dataset_info(kind)
    folder = _resolve_folder(info, path, download, cache_dir)
    arrays = {}
    for role in ROLES:
        f = info.files[role]
        arrays[role] = _load_file(_find(folder, f), f, info, verify)
    for role in ("train_labels", "test_labels"):
        y = arrays[role]
        if y.size and y.max() >= len(info.classes):
            raise ValueError(
                f"{info.title} {role.replace('_', ' ')} in {folder} go up to {y.max()}; "
                f"expected 0..{len(info.classes) - 1}."
            )
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


def load_fashion_mnist(path=None, *, verify: bool = True, download: bool = False, cache_dir=None):
    """Fashion-MNIST (Zalando; 10 clothing classes, see ``DATASETS["fashion_mnist"].classes``),
    same shapes and dtypes as :func:`load_mnist`. Not shipped: pass ``download=True`` once,
    or ``path=`` / ``$CNNLAB_FASHION_MNIST_DIR``."""
    return load_mnist(path, kind="fashion_mnist", verify=verify, download=download, cache_dir=cache_dir)


def load_kmnist(path=None, *, verify: bool = True, download: bool = False, cache_dir=None):
    """Kuzushiji-MNIST (10 classes of cursive Japanese hiragana), same shapes and dtypes as
    :func:`load_mnist`. Not shipped: pass ``download=True`` once, or ``path=`` /
    ``$CNNLAB_KMNIST_DIR``."""
    return load_mnist(path, kind="kmnist", verify=verify, download=download, cache_dir=cache_dir)
