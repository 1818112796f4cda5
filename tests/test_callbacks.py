"""Callbacks: hook order, EarlyStopping, ModelCheckpoint, learning-rate schedules, CSVLogger."""
import csv
import math

import numpy as np
import pytest

from cnnlab.training.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint
from cnnlab.training.schedules import CosineDecay, LearningRateScheduler, StepDecay
from cnnlab.models.io import load_model
from cnnlab.layers import Dense, Flatten
from cnnlab.models import Sequential
from cnnlab.training.checkpoints import restore


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.random((96, 1, 4, 4), dtype=np.float32)
    y = (x[:, 0, 0, 0] > 0.5).astype(np.int64) + 2 * (x[:, 0, 1, 1] > 0.5)
    return x, y


def small(seed=0):
    return Sequential([Flatten(), Dense(16, 4, rng=seed)], input_shape=(1, 4, 4)).compile("sgd", lr=0.1)


class Recorder(Callback):
    """Records hook calls, the lr seen during each epoch and the weights after each epoch."""

    def __init__(self, script=None):
        super().__init__()
        self.calls, self.lrs, self.snapshots, self.script = [], [], [], script

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs=None):
        self.calls.append(f"batch {batch}")
        assert set(logs) == {"loss", "accuracy", "size"}
        if batch == 0:
            self.lrs.append(self.model.optimizer.lr)

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch}")
        if self.script is not None:  # overwrite the monitored value with a scripted one
            logs["val_loss"] = self.script[epoch]
        self.snapshots.append([p.data.copy() for p in self.model.parameters()])

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def test_hooks_are_called_in_order(data):
    rec = Recorder()
    small().fit(*data, epochs=2, batch_size=48, verbose=0, seed=0, callbacks=[rec])
    assert rec.calls == ["train_begin", "epoch_begin 0", "batch 0", "batch 1", "epoch_end 0",
                         "epoch_begin 1", "batch 0", "batch 1", "epoch_end 1", "train_end"]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights(data):
    rec = Recorder(script=[1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    stop = EarlyStopping(patience=1)
    model = small()
    h = model.fit(*data, epochs=6, batch_size=32, verbose=0, seed=0, validation_split=0.25, callbacks=[rec, stop])
    assert h.epoch == [0, 1, 2, 3] and h.stop_reason == "early_stopping"
    assert stop.best == 0.5 and stop.best_epoch == 1 and stop.stopped_epoch == 3
    assert all(np.array_equal(p.data, s) for p, s in zip(model.parameters(), rec.snapshots[1]))
    assert not all(np.array_equal(p.data, s) for p, s in zip(model.parameters(), rec.snapshots[3]))


def test_early_stopping_without_restore_keeps_the_last_weights(data):
    rec = Recorder(script=[1.0, 2.0, 3.0])
    model = small()
    model.fit(*data, epochs=3, batch_size=32, verbose=0, seed=0, validation_split=0.25,
              callbacks=[rec, EarlyStopping(patience=0, restore_best_weights=False)])
    assert len(rec.snapshots) == 2
    assert all(np.array_equal(p.data, s) for p, s in zip(model.parameters(), rec.snapshots[1]))


def test_monitoring_a_missing_value_fails_before_training(data):
    model = small()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(*data, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="val_accuracy"):
        model.fit(*data, epochs=2, verbose=0, callbacks=[ModelCheckpoint("x.npz", "val_accuracy", save_best_only=True)])
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


def test_step_decay_sets_the_learning_rate_each_epoch(data):
    rec = Recorder()
    h = small().fit(*data, epochs=5, batch_size=48, verbose=0, seed=0, callbacks=[StepDecay(2, 0.5), rec])
    expected = [0.1, 0.1, 0.05, 0.05, 0.025]
    assert rec.lrs == pytest.approx(expected, rel=1e-12) and h.history["lr"] == pytest.approx(expected, rel=1e-12)


def test_cosine_decay_follows_the_formula(data):
    rec = Recorder()
    small().fit(*data, epochs=4, batch_size=48, verbose=0, seed=0, callbacks=[CosineDecay(4, min_lr=0.01), rec])
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert rec.lrs == pytest.approx(expected, rel=1e-12)
    assert rec.lrs[0] == pytest.approx(0.1) and rec.lrs[2] == pytest.approx(0.055)


def test_generic_scheduler_and_a_schedule_reaching_zero_is_refused_before_training(data):
    rec = Recorder()
    small().fit(*data, epochs=3, batch_size=48, verbose=0, seed=0,
                callbacks=[LearningRateScheduler(lambda e, lr0: lr0 / (e + 1)), rec])
    assert rec.lrs == pytest.approx([0.1, 0.05, 0.1 / 3])
    model = small()
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="epoch 3"):
        model.fit(*data, epochs=3, verbose=0, callbacks=[CosineDecay(2)])  # min_lr 0 reached at epoch 3
    assert model.optimizer.lr == 0.1
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


def test_csv_logger_writes_one_row_per_epoch(data, tmp_path):
    path = tmp_path / "log.csv"
    h = small().fit(*data, epochs=3, batch_size=32, verbose=0, seed=0, validation_split=0.25,
                    callbacks=[StepDecay(1, 0.5), CSVLogger(path)])
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for key, values in h.history.items():
        assert [float(r[key]) for r in rows] == values  # repr() round-trips floats exactly
    # append=True keeps the earlier rows and continues after them
    small().fit(*data, epochs=1, batch_size=32, verbose=0, seed=0, validation_split=0.25,
                callbacks=[CSVLogger(path, append=True)])
    with open(path, newline="") as f:
        assert len(list(csv.DictReader(f))) == 3  # epoch 1 of the new run replaced the old epoch 1


def test_model_checkpoint_saves_only_improvements_and_files_load(data, tmp_path):
    rec = Recorder(script=[0.9, 0.5, 0.7, 0.4])
    ck = ModelCheckpoint(tmp_path / "best-{epoch:02d}.npz", save_best_only=True)
    model = small()
    model.fit(*data, epochs=4, batch_size=32, verbose=0, seed=0, validation_split=0.25, callbacks=[rec, ck])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["best-01.npz", "best-02.npz", "best-04.npz"]
    loaded = load_model(tmp_path / "best-02.npz")
    assert all(np.array_equal(p.data, s) for p, s in zip(loaded.parameters(), rec.snapshots[1]))
    again = restore(tmp_path / "best-04.npz")
    assert again.optimizer.state_dict()["step"] == model.optimizer.state_dict()["step"]


def test_model_checkpoint_every_epoch_and_missing_folder(data, tmp_path):
    small().fit(*data, epochs=2, batch_size=48, verbose=0, seed=0, callbacks=[ModelCheckpoint(tmp_path / "m.npz")])
    assert (tmp_path / "m.npz").is_file() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        small().fit(*data, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "no" / "m.npz")])


def test_callbacks_must_be_callback_objects(data):
    with pytest.raises(TypeError, match=r"callbacks\[0\]"):
        small().fit(*data, verbose=0, callbacks=[lambda: None])


def test_schedule_settings_are_checked():
    with pytest.raises(ValueError):
        StepDecay(0)
    with pytest.raises(ValueError):
        StepDecay(1, gamma=1.5)
    with pytest.raises(ValueError):
        CosineDecay(3, min_lr=-1.0)
    with pytest.raises(ValueError):
        EarlyStopping(mode="up")
