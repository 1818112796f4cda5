"""Faults during training: SIGKILL (also in the middle of a checkpoint write), Ctrl-C,
divergence, a full disk and an unwritable output folder.

The promises checked:

* after any kill the previous checkpoint is intact and loadable, and resuming from it ends
  with the same weights, bit for bit, as a run that was never interrupted;
* Ctrl-C stops at a batch boundary after saving a checkpoint, and resuming from it is exact;
* a diverging run stops at the first non-finite loss with a message naming the epoch, the
  batch and the layer, and keeps the last good checkpoint;
* a full disk or an unwritable folder gives a clear error, before training where it can be
  detected, and never a half-written model or checkpoint.

The long kill loop is ``python scripts/kill_resume.py --trials 4 --kills 6``.
"""
from __future__ import annotations

import errno
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cnnlab.io
from cnnlab.callbacks import Callback, LearningRateScheduler
from cnnlab.cli import main as cli_main
from cnnlab.io import read_archive
from cnnlab.checkpoints import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"cnnlab_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


kr = _load("kill_resume")


@pytest.fixture(scope="module")
def mnist_small(tmp_path_factory):
    return kr.prepare_data(tmp_path_factory.mktemp("data") / "data.npz", 160)


def _data(path):
    d = np.load(path)
    return d["x"], d["y"]


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes() for k in a)


def _temps(folder):
    return sorted(p.name for p in Path(folder).glob(".*.tmp"))


# ===== SIGKILL and Ctrl-C =============================================================================
def test_sigkill_at_random_moments_and_during_checkpoint_writes(mnist_small, tmp_path):
    """Three kills (random moments, and while the checkpoint temp file is being written), then
    a resumed run whose weights must equal the uninterrupted run's, bit for bit."""
    tally = kr.Tally()
    rng = np.random.default_rng(7)
    # the first kill comes during the second checkpoint write, so a checkpoint always exists to check
    modes = [("during_write", 2), ("random", None), ("sigint", None)]
    ok = kr.run_trial(mnist_small, tmp_path, epochs=3, seed=0, kills=3, rng=rng, tally=tally, log=lambda *a: None,
                      modes=modes)
    assert tally.problems == [], tally
    assert ok and tally.equal_to_reference == 1, tally
    assert tally.kills + tally.interrupts + tally.interrupts_early == 3, tally
    assert tally.kills_during_write >= 1 and tally.checkpoints_checked >= 1, tally


@pytest.mark.slow
def test_kill_resume_long():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "kill_resume.py"), "--trials", "2", "--kills", "5"],
                            capture_output=True, text=True, timeout=900, env=kr.child_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_kill_while_the_checkpoint_is_written_keeps_the_previous_one(mnist_small, tmp_path):
    """Deterministic version: wait for the second checkpoint's temp file, SIGKILL, and find the
    first checkpoint intact (epoch 1), the temp file left behind, and nothing half-written."""
    out = tmp_path / "run"
    out.mkdir()
    proc = kr.start_child(mnist_small, out, epochs=3, seed=0, slow_write=1.0)
    try:
        assert kr.wait_for_temp(out, proc, timeout=120, name=kr.CKPT, nth=2), proc.communicate()
    finally:
        proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    header, arrays = read_archive(out / kr.CKPT)  # intact, complete
    state = load_checkpoint(out / kr.CKPT)
    assert state.epoch == 1 and state.progress is None
    assert len(_temps(out)) == 1  # the torn write is only ever a temp file
    assert not (out / kr.FINAL).exists()


def _interrupt_once_saved(proc, checkpoint, timeout, before=None):
    """Send Ctrl-C once ``checkpoint`` exists (after ``before()`` returned true, if given);
    returns (stdout, stderr). The process is killed on the way out if it still runs."""
    try:
        if before is not None:
            assert before()
        deadline = time.monotonic() + timeout
        while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_saves_a_mid_epoch_checkpoint_and_resume_is_exact(mnist_small, tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    ref = kr.start_child(mnist_small, reference, epochs=2, seed=3)
    assert ref.wait(timeout=300) == 0, ref.communicate()
    out = tmp_path / "run"
    out.mkdir()
    proc = kr.start_child(mnist_small, out, epochs=2, seed=3, slow_write=0.3)
    # once the first epoch's checkpoint is saved, the run is in epoch 2
    stdout, stderr = _interrupt_once_saved(proc, out / kr.CKPT, 120,
                                           before=lambda: kr.wait_for_temp(out, proc, timeout=120, name=kr.CKPT,
                                                                           nth=1))
    assert proc.returncode == kr.EXIT_INTERRUPTED, stdout + stderr
    assert "INTERRUPTED at {'epoch': 2, 'batch'" in stdout
    state = load_checkpoint(out / kr.CKPT)
    assert state.epoch == 1 and state.progress is not None and state.progress["batch"] >= 1
    assert _temps(out) == []  # Ctrl-C lets the write finish and clean up
    resumed = kr.start_child(mnist_small, out, epochs=2, seed=3)
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    assert _same(kr.final_arrays(out, cli=False), kr.final_arrays(reference, cli=False))


_CLI_ARGS = ["--model", "lenet5", "--limit", "192", "--test-limit", "32", "--epochs", "2", "--seed", "0", "--quiet"]


def _cli(out, *extra):
    return subprocess.Popen([sys.executable, "-m", "cnnlab", "train", *_CLI_ARGS, "--out", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=kr.child_env())


def _cli_interrupted(out):
    """Start `cnnlab train`, send Ctrl-C once the first checkpoint exists; returns (proc, stdout, stderr)."""
    proc = _cli(out)
    stdout, stderr = _interrupt_once_saved(proc, out / "checkpoint.npz", 300)
    return proc, stdout, stderr


def test_cli_ctrl_c_stops_cleanly_with_a_resumable_checkpoint(tmp_path):
    out = tmp_path / "run"
    proc, stdout, stderr = _cli_interrupted(out)
    assert proc.returncode == 130, stderr
    # what was saved, and the exact command that continues: the same options plus --resume
    assert f"saved {out / 'checkpoint.npz'} (epoch 2 up to batch" in stderr, stderr
    assert (f"Resume with: cnnlab train {' '.join(_CLI_ARGS)} --out {out} --resume {out / 'checkpoint.npz'}"
            in stderr), stderr
    assert "Traceback" not in stderr
    state = load_checkpoint(out / "checkpoint.npz")
    assert state.epoch == 1 and state.progress is not None  # saved at the batch where it stopped
    assert not (out / "model.npz").exists() and _temps(out) == []


@pytest.mark.slow
def test_cli_ctrl_c_then_resume_matches_an_uninterrupted_cli_run(tmp_path):
    ref = _cli(tmp_path / "ref")
    out = tmp_path / "run"
    proc, stdout, stderr = _cli_interrupted(out)
    assert ref.wait(timeout=300) == 0, ref.communicate()
    assert proc.returncode == 130, stderr
    resumed = _cli(out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    assert _same(kr.final_arrays(out, cli=True), kr.final_arrays(tmp_path / "ref", cli=True))


def test_cli_resume_after_a_kill_between_last_checkpoint_and_model_file(tmp_path, capsys):
    args = ["train", "--model", "lenet5", "--limit", "64", "--test-limit", "16", "--epochs", "1", "--seed", "0",
            "--quiet", "--no-augment", "--val-split", "0", "--out", str(tmp_path)]
    assert cli_main(args) == 0
    (tmp_path / "model.npz").unlink()  # as if SIGKILL-ed between the two writes
    assert cli_main(args + ["--resume"]) == 0
    assert (tmp_path / "model.npz").exists()


# ===== divergence ============================================================================================
class _Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.batch_losses, self.epoch_weights = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.batch_losses.append([])

    def on_batch_end(self, batch, logs=None):
        self.batch_losses[-1].append(logs["loss"])

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights.append(_weights(self.model))


def test_divergence_stops_at_the_first_non_finite_loss_and_keeps_the_last_good_checkpoint(mnist_small, tmp_path):
    x, y = _data(mnist_small)
    model = kr.tiny_model(0)
    model.compile("sgd", lr=0.05)
    rec = _Recorder()
    boost = LearningRateScheduler(lambda epoch, lr0: lr0 if epoch == 0 else 1e30)  # epoch 2 explodes
    ckpt = tmp_path / "ckpt.npz"
    with pytest.warns(Warning):
        history = model.fit(x, y, epochs=3, batch_size=32, seed=0, verbose=0, checkpoint=ckpt, callbacks=[boost, rec])
    assert history.stop_reason == "diverged"
    finite_batches = len(rec.batch_losses[1])
    assert all(np.isfinite(rec.batch_losses[1]))  # no update was taken after the first non-finite loss
    assert history.stopped_at == {"epoch": 2, "batch": finite_batches + 1}
    assert len(history.epoch) == 1  # epoch 2 never completed
    diag = history.diagnostics[-1]
    assert diag.kind == "non_finite"
    message = diag.message
    assert f"training diverged at epoch 2, batch {finite_batches + 1}" in message
    layer = diag.details["layer"]
    assert isinstance(layer, int) and f"layer {layer} ({model.layers[layer].name}" in message
    assert f"The last good checkpoint, {ckpt} (end of epoch 1), is kept" in message
    assert "lower the learning rate" in message
    # the last good checkpoint: end of epoch 1, exactly the weights the model had then
    assert history.last_good_checkpoint == str(ckpt)
    state = load_checkpoint(ckpt)
    assert state.epoch == 1
    assert _same(state.model.state_dict(), rec.epoch_weights[0])
    assert _temps(tmp_path) == []


def test_cli_divergence_exits_1_naming_epoch_batch_and_layer(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "--model", "simple_cnn", "--optimizer", "sgd", "--lr", "1e30", "--batch-size", "64", "--limit",
         "128", "--test-limit", "16", "--epochs", "2", "--seed", "0", "--quiet", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=kr.child_env())
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "training diverged at epoch 1, batch" in result.stderr
    assert re.search(r"appeared in the (output|weights|gradient) of layer \d+ \(", result.stderr), result.stderr
    assert not (tmp_path / "model.npz").exists()


# ===== full disk, unwritable folders ============================================================================
def _enospc_savez(real, fail_on: int, calls: list):
    """np.savez that writes part of the archive and then fails like a full disk, on call ``fail_on``."""
    def savez(file, *args, **kwargs):
        calls.append(1)
        if len(calls) >= fail_on:
            file.write(b"PK\x03\x04 half an archive")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, *args, **kwargs)
    return savez


def test_full_disk_while_saving_keeps_the_old_model_file(tmp_path, monkeypatch):
    model = kr.tiny_model(0)
    path = model.save(tmp_path / "model.npz")
    before = path.read_bytes()
    other = kr.tiny_model(1)
    monkeypatch.setattr(cnnlab.io.np, "savez", _enospc_savez(np.savez, 1, []))
    with pytest.raises(OSError, match="No space left on device") as info:
        other.save(path)
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert _temps(tmp_path) == []
    with pytest.raises(OSError, match="No space left on device"):
        other.save(tmp_path / "new.npz")
    assert not (tmp_path / "new.npz").exists() and _temps(tmp_path) == []


def test_full_disk_during_training_keeps_the_previous_checkpoint(mnist_small, tmp_path, monkeypatch):
    x, y = _data(mnist_small)
    model = kr.tiny_model(0)
    model.compile("adam", lr=1e-3)
    ckpt = tmp_path / "ckpt.npz"
    rec = _Recorder()
    monkeypatch.setattr(cnnlab.io.np, "savez", _enospc_savez(np.savez, 2, []))  # the epoch-2 checkpoint fails
    with pytest.raises(OSError, match="No space left on device"):
        model.fit(x, y, epochs=3, batch_size=64, seed=0, verbose=0, doctor=False, checkpoint=ckpt, callbacks=[rec])
    monkeypatch.undo()
    state = load_checkpoint(ckpt)
    assert state.epoch == 1
    assert _same(state.model.state_dict(), rec.epoch_weights[0])
    assert _temps(tmp_path) == []


def test_rename_failure_keeps_the_previous_checkpoint(mnist_small, tmp_path, monkeypatch):
    x, y = _data(mnist_small)
    model = kr.tiny_model(0)
    model.compile("adam", lr=1e-3)
    ckpt = tmp_path / "ckpt.npz"
    model.fit(x, y, epochs=1, batch_size=64, seed=0, verbose=0, doctor=False, checkpoint=ckpt)
    before = ckpt.read_bytes()

    def failing_replace(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cnnlab.io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="Input/output error"):
        model.fit(x, y, epochs=2, batch_size=64, verbose=0, doctor=False, checkpoint=ckpt, resume_from=ckpt)
    monkeypatch.undo()
    assert ckpt.read_bytes() == before and _temps(tmp_path) == []


def test_cli_full_disk_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cnnlab.io.np, "savez", _enospc_savez(np.savez, 1, []))
    status = cli_main(["train", "--model", "lenet5", "--limit", "64", "--test-limit", "16", "--epochs", "1",
                       "--quiet", "--no-augment", "--val-split", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "No space left on device" in err and "Traceback" not in err
    assert not (tmp_path / "checkpoint.npz").exists() and not (tmp_path / "model.npz").exists()
    assert _temps(tmp_path) == []


@pytest.mark.parametrize("how", ["under-a-file", "not-writable"])
def test_unwritable_output_is_refused_before_training(mnist_small, tmp_path, monkeypatch, how):
    x, y = _data(mnist_small)
    model = kr.tiny_model(0)
    model.compile("adam", lr=1e-3)
    before = _weights(model)
    if how == "under-a-file":  # works as root too, where chmod would not block writes
        (tmp_path / "afile").write_text("x")
        target = tmp_path / "afile" / "ckpt.npz"
        exc, match = (FileNotFoundError, NotADirectoryError), r"afile"
    else:
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == tmp_path else real_access(p, mode))
        target = tmp_path / "ckpt.npz"
        exc, match = PermissionError, r"folder .* is not writable"
    with pytest.raises(exc, match=match):
        model.fit(x, y, epochs=50, batch_size=8, verbose=0, checkpoint=target)
    assert model.optimizer.step_count == 0  # refused up front, not after 50 epochs
    assert _same(_weights(model), before)


def test_cli_output_under_a_file_is_refused_before_loading_data(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    status = cli_main(["train", "--epochs", "1", "--out", str(tmp_path / "afile" / "run")])
    err = capsys.readouterr().err
    assert status == 2
    assert "output folder" in err and "not writable" in err and "Traceback" not in err
    assert (tmp_path / "afile").read_text() == "x"
