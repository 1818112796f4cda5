"""Issue 11, items 5-9: a resume checks the WHOLE checkpoint and the run's settings before it
changes anything; one run per folder; batch-norm and checkpoint-path problems found up front."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnlab.training.schedules import StepDecay
from cnnlab.training.checkpoints import load_checkpoint
from cnnlab.cli import main as cli_main
from cnnlab.models.io import ModelFileError
from cnnlab.layers import BatchNorm1d, Conv2d, Dense, Flatten, ReLU
from cnnlab.models import Sequential

ROOT = Path(__file__).resolve().parents[2]
F32 = np.float32


def _model():
    m = Sequential([Conv2d(1, 2, 3, rng=0), ReLU(), Flatten(), Dense(2 * 6 * 6, 2, rng=0)], input_shape=(1, 8, 8))
    return m.compile("adam", lr=0.01)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((20, 1, 8, 8), dtype=F32), (np.arange(20) % 2).astype(np.int64)


FIT = dict(batch_size=8, seed=0, verbose=0, doctor=False)


@pytest.fixture()
def mid_epoch_checkpoint(data, tmp_path):
    """A checkpoint interrupted in epoch 2, batch 2 (as Ctrl-C writes it)."""
    from cnnlab.training.callbacks import Callback

    class StopAt(Callback):
        def on_batch_end(self, batch, logs=None):
            if self.model.history_epoch == 1 and batch == 1:
                raise KeyboardInterrupt

        def on_epoch_begin(self, epoch, logs=None):
            self.model.history_epoch = epoch

    ck = tmp_path / "ck.npz"
    model = _model()
    model.fit(*data, epochs=3, callbacks=[StepDecay(1, 0.5), StopAt()], checkpoint=ck, **FIT)
    assert load_checkpoint(ck).progress is not None
    return ck


def _edit(path, header_change=None, perm=None):
    with zipfile.ZipFile(path) as zf:
        members = [(i.filename, zf.read(i)) for i in zf.infolist()]
    out = []
    for name, raw in members:
        if name == "__cnnlab__.npy" and header_change:
            header = json.loads(np.load(io.BytesIO(raw)).tobytes().decode())
            header_change(header)
            raw = _npy(np.frombuffer(json.dumps(header).encode(), np.uint8))
        if name == "progress/permutation.npy" and perm is not None:
            raw = _npy(perm(np.load(io.BytesIO(raw))))
        out.append((name, raw))
    bad = path.with_name("bad.npz")
    with zipfile.ZipFile(bad, "w") as zf:
        for name, raw in out:
            zf.writestr(name, raw)
    return bad


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _set(path_keys, value):
    def change(h):
        d = h
        for k in path_keys[:-1]:
            d = d[k]
        d[path_keys[-1]] = value
    return change


# ===== 5. hostile checkpoint: whole file validated before any state changes ==============================
HOSTILE = {
    "perm_out_of_range": dict(perm=lambda p: np.where(p == p.max(), 10**6, p)),
    "perm_negative": dict(perm=lambda p: np.where(p == 0, -1, p)),
    "perm_float": dict(perm=lambda p: p.astype(np.float64)),
    "perm_repeated": dict(perm=lambda p: np.where(p == 1, 0, p)),
    "batch_past_end": dict(header_change=_set(["progress", "batch"], 99)),
    "batch_float": dict(header_change=_set(["progress", "batch"], 1.5)),
    "history_wrong_type": dict(header_change=_set(["history", "history", "loss"], "abc")),
    "history_not_dict": dict(header_change=_set(["history"], [1, 2])),
    "callbacks_wrong_type": dict(header_change=_set(["callbacks"], {"a": 1})),
    "callback_state_bad": dict(header_change=lambda h: h["callbacks"][0]["state"].__setitem__("initial_lr", "x")),
    "epoch_nan": dict(header_change=_set(["epoch"], float("nan"))),
    "epoch_negative": dict(header_change=_set(["epoch"], -1)),
    "sums_bad": dict(header_change=_set(["progress", "sums"], {"loss": None})),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_checkpoint_is_refused_before_any_state_changes(data, mid_epoch_checkpoint, case):
    bad = _edit(mid_epoch_checkpoint, **HOSTILE[case])
    model = _model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as info:
        model.fit(*data, epochs=3, callbacks=[StepDecay(1, 0.5)], resume_from=bad, **FIT)
    assert "bad.npz" in str(info.value)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items()), "weights changed"
    assert model.optimizer.state_dict()["step"] == 0


def test_checkpoint_fuzzer_short():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cnnlab_fuzz_files_3", ROOT / "scripts" / "fuzz_files.py")
    fuzz = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fuzz
    spec.loader.exec_module(fuzz)
    stats, _ = fuzz.run(cases=200, seed=0, categories=("checkpoint",), timeout=20)
    (s,) = stats
    assert s.tried == 200 and s.crashes == 0, s.crash_examples
    assert s.clean > 100


# ===== 6. settings compared on resume =================================================================
@pytest.mark.parametrize("change, listed", [
    (dict(batch_size=4), "batch_size: 8 in the checkpoint, 4 now"),
    (dict(validation_split=0.25), "validation_split: 0.0 in the checkpoint, 0.25 now"),
    (dict(augment=1), "augment: None in the checkpoint, 1 now"),
    (dict(seed=5), "seed: 0 in the checkpoint, 5 now"),
    (dict(n=16), "samples: 20 in the checkpoint, 16 now"),
    (dict(lr=0.5), "optimizer.lr: 0.01 in the checkpoint, 0.5 now"),
])
def test_resume_with_other_settings_lists_the_differences(data, tmp_path, change, listed):
    ck = tmp_path / "ck.npz"
    _model().fit(*data, epochs=1, checkpoint=ck, **FIT)
    model = _model()
    if "lr" in change:
        model.optimizer.lr = change.pop("lr")
    n = change.pop("n", 20)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="other settings") as info:
        model.fit(data[0][:n], data[1][:n], epochs=2, checkpoint=ck, resume_from=ck, **{**FIT, **change})
    assert listed in str(info.value)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())


def test_allowed_changes_epochs_and_lr(data, tmp_path):
    ck = tmp_path / "ck.npz"
    _model().fit(*data, epochs=1, checkpoint=ck, callbacks=[StepDecay(1, 0.5)], **FIT)
    model = _model()  # epochs may grow without asking
    model.fit(*data, epochs=2, callbacks=[StepDecay(1, 0.5)], resume_from=ck, **FIT)
    fast = _model()
    fast.optimizer.lr = 0.02
    with pytest.raises(ValueError, match="optimizer.lr"):
        fast.fit(*data, epochs=2, callbacks=[StepDecay(1, 0.5)], resume_from=ck, **FIT)
    fast.fit(*data, epochs=2, callbacks=[StepDecay(1, 0.5)], resume_from=ck, allow_change=("epochs", "lr"), **FIT)
    assert fast.optimizer.lr == pytest.approx(2 * model.optimizer.lr)  # the schedule, scaled to the new rate
    with pytest.raises(ValueError, match=r"allow_change may name only \['epochs', 'lr'\]"):
        _model().fit(*data, epochs=2, resume_from=ck, allow_change=("batch_size",), **FIT)


def test_cli_resume_with_other_batch_size_is_refused(tmp_path, capsys):
    args = ["train", "--model", "lenet5", "--limit", "64", "--test-limit", "32", "--out", str(tmp_path), "--quiet",
            "--schedule", "none"]
    assert cli_main([*args, "--epochs", "1", "--batch-size", "32"]) == 0
    capsys.readouterr()
    assert cli_main([*args, "--epochs", "2", "--batch-size", "16", "--resume"]) == 2
    assert "batch_size: 32 in the checkpoint, 16 now" in capsys.readouterr().err


# ===== 7. one run per folder =============================================================================
def test_second_run_into_the_same_folder_is_refused_naming_the_first(tmp_path):
    from cnnlab.utils.runlock import LOCK_NAME, hold_run_folder

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from cnnlab.utils.runlock import hold_run_folder\n"
        f"with hold_run_folder({str(tmp_path)!r}):\n print('held', flush=True); time.sleep(60)")],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--limit", "64", "--epochs", "1", "--out",
                               str(tmp_path), "--quiet"], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2
        assert f"in use by another cnnlab train (pid {holder.pid}" in proc.stderr
        assert not (tmp_path / "checkpoint.npz").exists()
    finally:
        holder.kill()
        holder.wait()
    # a killed holder leaves its lock file, but the OS released the lock
    assert (tmp_path / LOCK_NAME).exists()
    with hold_run_folder(tmp_path):
        pass


# ===== 8. batch norm with a last batch of one ==========================================================
def test_batchnorm1d_last_batch_of_one_is_refused_before_training():
    model = Sequential([Flatten(), Dense(4, 3, rng=0), BatchNorm1d(3), Dense(3, 2, rng=0)], input_shape=(1, 2, 2))
    model.compile("sgd", lr=0.1)
    x = np.random.default_rng(0).random((9, 1, 2, 2), dtype=F32)
    y = np.arange(9) % 2
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"layer 2 \(BatchNorm1d\).*last batch of 1.*use batch_size=3"):
        model.fit(x, y, epochs=1, batch_size=4, verbose=0, doctor=False)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    model.fit(x, y, epochs=1, batch_size=3, verbose=0, doctor=False)  # 3 + 3 + 3: fine


# ===== 9. checkpoint path checked up front ==============================================================
def test_checkpoint_that_is_a_folder_is_refused_before_training(data, tmp_path):
    folder = tmp_path / "ck.npz"
    folder.mkdir()
    model = _model()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(IsADirectoryError, match=r"ck.npz: it is a folder"):
        model.fit(*data, epochs=1, checkpoint=folder, **FIT)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        model.save(folder)


@pytest.mark.parametrize("name", ["checkpoint.npz", "model.npz", "report.html"])
def test_cli_run_file_that_is_a_folder_is_refused_at_once(tmp_path, capsys, name):
    (tmp_path / name).mkdir()
    assert cli_main(["train", "--limit", "64", "--epochs", "1", "--out", str(tmp_path), "--quiet"]) == 2
    assert f"{name}: it is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
