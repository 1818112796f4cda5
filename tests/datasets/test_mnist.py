"""MNIST loading: the shipped copy, path= and environment variables, checksums, and the
downloadable relatives through a local server."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil

import numpy as np
import pytest

from cnnlab.datasets import ChecksumError, DownloadError, load_fashion_mnist, load_kmnist, load_mnist
from cnnlab.datasets.download import md5_file
from cnnlab.datasets.idx import write_idx
from cnnlab.datasets.mnist import DATASETS, SHIPPED_DIR, IdxFileInfo, cache_folder, dataset_info

# Counted independently (np.bincount over the raw label bytes), and the first training labels.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No user setting leaks in, and the cache is an empty temporary folder."""
    for kind in DATASETS.values():
        monkeypatch.delenv(kind.env_var, raising=False)
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def shipped():
    return load_mnist()


def _raw(folder, name):
    """Oracle: decompress and slice by hand, without cnnlab."""
    with gzip.open(folder / f"{name}.gz", "rb") as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16 if "images" in name else 8)


def test_shipped_copy(shipped, mnist_files):
    (x_train, y_train), (x_test, y_test) = shipped
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert np.bincount(y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == TEST_COUNTS
    assert int((y_train == 0).sum()) == 5923 and int((y_test == 0).sum()) == 980
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert x_train.max() == 255 and x_train.min() == 0
    np.testing.assert_array_equal(x_test.reshape(-1), _raw(mnist_files, "t10k-images-idx3-ubyte"))
    np.testing.assert_array_equal(y_train, _raw(mnist_files, "train-labels-idx1-ubyte"))
    assert x_train.flags.writeable and x_train.flags.c_contiguous


def test_shipped_copy_matches_an_independent_copy(shipped, reference_mnist):
    """Skipped where no second copy exists (a user's clone): the MD5 table still guards the files."""
    for name in FILES:
        ours, theirs = _raw(SHIPPED_DIR / "mnist", name), _raw(reference_mnist, name)
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs), name
    np.testing.assert_array_equal(shipped[1][0].reshape(-1), _raw(reference_mnist, "t10k-images-idx3-ubyte"))


def test_shipped_files_match_the_checksum_table():
    for f in DATASETS["mnist"].files.values():
        with gzip.open(SHIPPED_DIR / "mnist" / f.filename, "rb") as g:
            data = g.read()
        assert len(data) == f.nbytes
        assert hashlib.md5(data).hexdigest() == f.md5
    assert {f.nbytes for f in DATASETS["mnist"].files.values()} == {47040016, 60008, 7840016, 10008}


def _copy(src, dst, decompress=False):
    dst.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if decompress:
            with gzip.open(src / f"{name}.gz", "rb") as f:
                (dst / name).write_bytes(f.read())
        else:
            shutil.copy(src / f"{name}.gz", dst / f"{name}.gz")
    return dst


def _same(a, b):
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_path_argument(tmp_path, shipped, mnist_files):
    folder = _copy(mnist_files, tmp_path / "copy")
    _same(load_mnist(str(folder)), shipped)


def test_decompressed_files_are_accepted(tmp_path, shipped, mnist_files):
    folder = _copy(mnist_files, tmp_path / "raw", decompress=True)
    _same(load_mnist(path=folder), shipped)


def test_environment_variable(tmp_path, monkeypatch, shipped, mnist_files):
    folder = _copy(mnist_files, tmp_path / "env")
    monkeypatch.setenv("CNNLAB_MNIST_DIR", str(folder))
    _same(load_mnist(), shipped)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()  # an explicit setting is never skipped silently
    with pytest.raises(FileNotFoundError, match=r"\$CNNLAB_MNIST_DIR.*lacks t10k-labels-idx1-ubyte.gz"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match=r"path=.*lacks"):
        load_mnist(path=folder)


def test_path_argument_wins_over_environment(tmp_path, monkeypatch, mnist_files):
    monkeypatch.setenv("CNNLAB_MNIST_DIR", str(tmp_path / "nowhere"))
    (_, y), _ = load_mnist(path=mnist_files)
    assert y.shape == (60000,)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist()


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "missing")
    (tmp_path / "file.npz").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="must be a folder"):
        load_mnist(tmp_path / "file.npz")
    with pytest.raises(ValueError, match="unknown dataset kind 'cifar'"):
        load_mnist(kind="cifar")


def _tamper_labels(folder):
    """Change one test label (7 -> 3), keeping the size, and re-compress."""
    path = folder / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    assert data[8] == 7
    data[8] = 3
    path.write_bytes(gzip.compress(bytes(data)))


def _linked_copy(src, dst):
    dst.mkdir()
    for name in FILES:  # symlinks: the big files are not copied
        (dst / f"{name}.gz").symlink_to(src / f"{name}.gz")
    return dst


def test_tampered_copy_fails_the_checksum(tmp_path, mnist_files):
    folder = _linked_copy(mnist_files, tmp_path / "tampered")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    shutil.copy(mnist_files / "t10k-labels-idx1-ubyte.gz", folder)
    _tamper_labels(folder)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz is corrupted: MD5 .* expected "
                                            "27ae3e4e09519cfbb04c329615203637"):
        load_mnist(folder)
    _, (_, y_test) = load_mnist(folder, verify=False)  # structure is fine: loads without MD5
    assert y_test[0] == 3


@pytest.mark.parametrize("problem", ["truncated", "swapped", "not gzip"])
def test_wrong_files_are_rejected(tmp_path, mnist_files, problem):
    folder = _linked_copy(mnist_files, tmp_path / problem)
    target = folder / "t10k-labels-idx1-ubyte.gz"
    target.unlink()
    if problem == "truncated":
        data = gzip.decompress((mnist_files / target.name).read_bytes())
        target.write_bytes(gzip.compress(data[:-10]))
        match = "holds 9998 bytes after decompression; expected exactly 10008"
    elif problem == "swapped":
        target.symlink_to(mnist_files / "train-labels-idx1-ubyte.gz")
        match = "holds more than 10008 bytes"
    else:
        target.write_bytes(b"\x1f\x8b" + b"\x00" * 100)
        match = "not a valid gzip file"
    with pytest.raises(ValueError, match=match):
        load_mnist(folder, verify=problem == "truncated")  # sizes are checked even without verify


def test_wrong_shape_in_header(tmp_path, mnist_files):
    folder = _linked_copy(mnist_files, tmp_path / "shape")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    # same byte count (10008), but int8 (dtype code 0x09) instead of uint8
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(10000, np.int8))
    with pytest.raises(ValueError, match=r"dtype int8; expected shape \(10000,\) and dtype uint8"):
        load_mnist(folder, verify=False)


def test_missing_everywhere_gives_instructions(monkeypatch, tmp_path):
    monkeypatch.setattr("cnnlab.datasets.mnist.SHIPPED_DIR", tmp_path / "not-shipped")
    with pytest.raises(FileNotFoundError, match=r"(?s)MNIST not found.*download=True.*CNNLAB_MNIST_DIR"):
        load_mnist()
    assert cache_folder("mnist") == tmp_path / "cache" / "mnist"
    assert cache_folder("mnist", tmp_path / "elsewhere") == tmp_path / "elsewhere" / "mnist"


def test_registry():
    assert set(DATASETS) == {"mnist", "fashion_mnist", "kmnist"}
    assert dataset_info("Fashion-MNIST") is DATASETS["fashion_mnist"]
    for info in DATASETS.values():
        assert len(info.classes) == 10 and info.mirrors
        for f in info.files.values():
            for md5 in (f.gz_md5, f.md5):
                assert md5 is None or (len(md5) == 32 and int(md5, 16) >= 0)
    assert DATASETS["mnist"].mirrors == ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                                         "https://storage.googleapis.com/cvdf-datasets/mnist/")
    assert DATASETS["fashion_mnist"].files["train_images"].gz_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert DATASETS["kmnist"].files["test_labels"].gz_md5 == "7320c461ea6c1c855c0b718fb2a4b134"


# ----- downloadable relatives, served locally -------------------------------------------------
def _fake_dataset(tmp_path, http_server, kind, monkeypatch, n_train=50, n_test=20):
    """Small stand-in files for ``kind`` served by the local server; the registry entry is
    patched to point at it, with the fakes' real .gz checksums. Returns the arrays."""
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }
    info = DATASETS[kind]
    files = {}
    for role, f in info.files.items():
        path = write_idx(tmp_path / "served" / f.filename, arrays[role])
        http_server.add(f"/{kind}/{f.filename}", path.read_bytes())
        files[role] = IdxFileInfo(f.filename, arrays[role].shape, md5_file(path))
    patched = dataclasses.replace(info, files=files, mirrors=(http_server.url("/gone/"), http_server.url(f"/{kind}/")))
    monkeypatch.setitem(DATASETS, kind, patched)
    return arrays


@pytest.mark.parametrize("loader, kind", [(load_fashion_mnist, "fashion_mnist"), (load_kmnist, "kmnist")])
def test_relatives_download_into_the_cache(tmp_path, http_server, monkeypatch, loader, kind):
    arrays = _fake_dataset(tmp_path, http_server, kind, monkeypatch)
    with pytest.raises(FileNotFoundError, match="download=True"):
        loader()
    assert http_server.requests == []
    (x_train, y_train), (x_test, y_test) = loader(download=True)
    np.testing.assert_array_equal(x_train, arrays["train_images"])
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(x_test, arrays["test_images"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])
    assert len(http_server.requests) == 8  # each file: a 404 on the first mirror, then the second
    cached = sorted(p.name for p in (tmp_path / "cache" / kind).iterdir())
    assert cached == sorted(f.filename for f in DATASETS[kind].files.values())
    loader(download=True)  # second time: from the cache, no request
    assert len(http_server.requests) == 8
    # the cache is verified on every load, against the .gz checksum (of the files served here)
    served = (tmp_path / "served" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    data = bytearray(gzip.decompress(served))
    data[8] = (data[8] + 1) % 10  # one label changed, same size
    (tmp_path / "cache" / kind / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz is corrupted.*published .gz"):
        loader()


def test_download_checks_the_published_checksums(tmp_path, http_server, monkeypatch):
    """Files that are not the real Fashion-MNIST fail the registry's MD5 and are not kept."""
    published = DATASETS["fashion_mnist"]
    _fake_dataset(tmp_path, http_server, "fashion_mnist", monkeypatch)
    local = DATASETS["fashion_mnist"]
    monkeypatch.setitem(DATASETS, "fashion_mnist", dataclasses.replace(published, mirrors=local.mirrors))
    expected = "(?s)MD5 of the downloaded file.*expected 8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    with pytest.raises(DownloadError, match=expected):
        load_fashion_mnist(download=True)
    cache = tmp_path / "cache" / "fashion_mnist"
    assert not cache.exists() or list(cache.iterdir()) == []
