"""Checkpoints: exact resume (bit for bit), Ctrl-C, saved optimizer state, refusals."""
import os
import signal

import numpy as np
import pytest

from cnnlab.training.callbacks import Callback
from cnnlab.training.schedules import StepDecay
from cnnlab.datasets import load_mnist
from cnnlab.models.io import ModelFileError, load_model
from cnnlab.layers import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from cnnlab.models import Sequential
from cnnlab.training.checkpoints import load_checkpoint, restore, save_checkpoint, save_training_state
from cnnlab.training.history import History


@pytest.fixture(scope="module")
def data():
    (x, y), _ = load_mnist(verify=False)
    return (x[:200].astype(np.float32) / 255)[:, None], y[:200].astype(np.int64)


def tiny(seed=0):
    return Sequential([Conv2d(1, 4, 3, padding=1, rng=seed), ReLU(), MaxPool2d(2), Flatten(), Dropout(0.2),
                       Dense(4 * 14 * 14, 10, rng=seed)], input_shape=(1, 28, 28), name="tiny")


FIT = dict(batch_size=32, seed=3, verbose=0, augment=1, validation_split=0.1)


def run(data, epochs, **kw):
    model = tiny().compile("adam", lr=5e-3)
    history = model.fit(*data, epochs=epochs, callbacks=[StepDecay(1, 0.5)], **{**FIT, **kw})
    return model, history


def same_weights(a, b):
    return all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))


@pytest.fixture(scope="module")
def reference(data):
    return run(data, 3)


def test_resume_at_epoch_boundary_equals_uninterrupted_run_bit_for_bit(data, reference, tmp_path):
    ref_model, ref_hist = reference
    ck = tmp_path / "ck.npz"
    first, _ = run(data, 2, checkpoint=ck)  # a run killed after epoch 2
    assert not same_weights(first, ref_model)
    model, hist = run(data, 3, resume_from=ck)
    assert same_weights(model, ref_model)
    assert hist.history == ref_hist.history and hist.epoch == [0, 1, 2]
    assert np.array_equal(model.optimizer.state_dict()["buffers"]["0.exp_avg"],
                          ref_model.optimizer.state_dict()["buffers"]["0.exp_avg"])


class InterruptAt(Callback):
    def __init__(self, epoch, batch, how):
        super().__init__()
        self.at, self.how, self.epoch = (epoch, batch), how, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            if self.how == "signal":
                os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C: fit stops after this batch
            else:
                raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["signal", "raise"])
def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(data, reference, tmp_path, how):
    ref_model, ref_hist = reference
    ck = tmp_path / "ck.npz"
    model = tiny().compile("adam", lr=5e-3)
    hist = model.fit(*data, epochs=3, callbacks=[StepDecay(1, 0.5), InterruptAt(1, 2, how)], checkpoint=ck, **FIT)
    assert hist.stop_reason == "interrupted" and hist.stopped_at == {"epoch": 2, "batch": 3}
    assert hist.last_good_checkpoint == str(ck) and len(hist.epoch) == 1
    state = load_checkpoint(ck)
    assert state.epoch == 1 and state.progress["batch"] == 3
    resumed, rhist = run(data, 3, resume_from=ck)
    assert same_weights(resumed, ref_model)
    assert rhist.history == ref_hist.history


def test_checkpoint_holds_everything_needed(data, tmp_path):
    model, hist = run(data, 1)
    rng = np.random.default_rng(11)
    rng.random(5)
    path = save_checkpoint(tmp_path / "c.npz", model, model.optimizer, 1, hist, rng, config={"batch_size": 32})
    state = load_checkpoint(path)
    assert state.epoch == 1 and state.config == {"batch_size": 32}
    assert state.history.history == hist.history
    assert state.make_rng().random(3).tolist() == rng.random(3).tolist()
    assert same_weights(state.model, model)
    saved, live = state.optimizer_state, model.optimizer.state_dict()
    assert saved["step"] == live["step"] and saved["config"] == live["config"]
    assert all(np.array_equal(saved["buffers"][k], v) for k, v in live["buffers"].items())
    assert same_weights(load_model(path), model)  # a checkpoint is also a plain model file


def test_restore_gives_a_model_that_continues_like_the_original(data, tmp_path):
    model, _ = run(data, 1)
    path = save_training_state(tmp_path / "m.npz", model, model.optimizer)
    twin = restore(path)
    assert type(twin.optimizer) is type(model.optimizer) and twin.optimizer.lr == model.optimizer.lr
    x, y = data
    for m in (model, twin):
        m.fit(x[:64], y[:64], epochs=1, batch_size=32, seed=9, verbose=0)
    assert same_weights(model, twin)


def test_resume_refuses_another_model_or_a_finished_run_without_changing_anything(data, tmp_path):
    ck = tmp_path / "ck.npz"
    run(data, 2, checkpoint=ck)
    other = Sequential([Conv2d(1, 2, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(),
                        Dense(2 * 14 * 14, 10, rng=0)], input_shape=(1, 28, 28)).compile("adam")
    before = [p.data.copy() for p in other.parameters()]
    with pytest.raises(ValueError, match="different model"):
        other.fit(*data, epochs=3, resume_from=ck, verbose=0)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, other.parameters()))
    model = tiny().compile("adam", lr=5e-3)
    with pytest.raises(ValueError, match="already completed 2 epochs"):
        model.fit(*data, epochs=2, resume_from=ck, verbose=0)
    sgd = tiny().compile("sgd", lr=0.1)
    with pytest.raises(ValueError, match="optimizer state"):
        sgd.fit(*data, epochs=3, resume_from=ck, verbose=0)
    plain = tmp_path / "plain.npz"
    model.save(plain)
    with pytest.raises(ValueError, match="without the training loop's state"):
        model.fit(*data, epochs=3, resume_from=plain, verbose=0)


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ModelFileError):
        load_checkpoint(bad)


def test_history_without_checkpoint_is_plain(data):
    _, hist = run(data, 1)
    assert isinstance(hist, History) and hist.last_good_checkpoint is None
