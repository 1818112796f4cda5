"""Save/load: round trips, atomic writes, and files that are broken or hostile."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import cnnlab
from cnnlab.models.io import ModelFileError, read_archive, write_archive
from cnnlab.models.zoo import bn_cnn, simple_cnn


def _x(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def test_round_trip_gives_identical_predictions(tmp_path):
    model = simple_cnn(seed=5)
    path = model.save(tmp_path / "m.npz")
    loaded = cnnlab.load_model(path)
    np.testing.assert_array_equal(loaded.forward(_x()), model.forward(_x()))
    assert loaded.summary(print_fn=None) == model.summary(print_fn=None)


def test_round_trip_keeps_batchnorm_buffers_and_float64(tmp_path):
    model = bn_cnn().astype(np.float64)
    model.forward(_x().astype(np.float64), training=True)  # move the running stats
    loaded = cnnlab.load_model(model.save(tmp_path / "bn.npz"))
    assert loaded.dtype == np.float64
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)


def test_failed_save_leaves_old_file_intact_and_no_temp_file(tmp_path, monkeypatch):
    path = simple_cnn(seed=1).save(tmp_path / "m.npz")
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left"):
        simple_cnn(seed=2).save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_into_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        simple_cnn().save(tmp_path / "nope" / "m.npz")


def test_truncated_file_is_a_clean_error(tmp_path):
    path = simple_cnn().save(tmp_path / "m.npz")
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            cnnlab.load_model(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no model file"):
        cnnlab.load_model(tmp_path / "absent.npz")


def _rewrite(path, mutate):
    """Rebuild the archive after ``mutate(dict name -> bytes)``."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    mutate(members)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cnnlab_pwned",))


def test_pickled_object_array_is_refused_and_never_executed(tmp_path):
    path = simple_cnn().save(tmp_path / "m.npz")
    evil = np.array([_Boom()], dtype=object)
    _rewrite(path, lambda m: m.__setitem__("model/0.weight.npy", _npy(evil, allow_pickle=True)))
    if os.path.exists("/tmp/cnnlab_pwned"):
        os.unlink("/tmp/cnnlab_pwned")
    with pytest.raises(ModelFileError, match="only numeric arrays"):
        cnnlab.load_model(path)
    assert not os.path.exists("/tmp/cnnlab_pwned")


def test_lying_array_header_is_refused_before_allocating(tmp_path):
    path = simple_cnn().save(tmp_path / "m.npz")
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
    header += b" " * (118 - len(header)) + b"\n"
    fake = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 64
    _rewrite(path, lambda m: m.__setitem__("model/0.weight.npy", fake))
    with pytest.raises(ModelFileError, match="declares .* bytes"):
        cnnlab.load_model(path)


def test_wrong_shape_and_missing_key_and_extra_key(tmp_path):
    path = simple_cnn().save(tmp_path / "m.npz")
    original = path.read_bytes()
    cases = {
        "expected shape": lambda m: m.__setitem__("model/0.weight.npy", _npy(np.zeros((2, 2), np.float32))),
        "expected shape .* dtype float32": lambda m: m.__setitem__("model/0.bias.npy", _npy(np.zeros(32, np.float64))),
        "missing keys": lambda m: m.pop("model/0.bias.npy"),
        "unexpected keys": lambda m: m.__setitem__("model/99.weight.npy", _npy(np.zeros(1, np.float32))),
    }
    for message, mutate in cases.items():
        path.write_bytes(original)
        _rewrite(path, mutate)
        with pytest.raises(ModelFileError, match=message):
            cnnlab.load_model(path)


def test_other_version_and_foreign_npz(tmp_path):
    path = tmp_path / "v2.npz"
    write_archive(path, {"kind": "model"}, {})
    _rewrite(path, lambda m: m.__setitem__(
        "__cnnlab__.npy", _npy(np.frombuffer(json.dumps({"format": "cnnlab", "version": 2}).encode(), np.uint8))))
    with pytest.raises(ModelFileError, match="format version 2; this cnnlab reads version 1"):
        read_archive(path)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ModelFileError, match="not a cnnlab model file"):
        cnnlab.load_model(foreign)


def test_write_archive_refuses_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="only numeric arrays"):
        write_archive(tmp_path / "x.npz", {}, {"a": np.array(["text"], dtype=object)})
    assert not list(tmp_path.iterdir())
