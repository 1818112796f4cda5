"""fit(checkpoint=...) holds the checkpoint's folder: a second run there is refused, nesting in one thread is not."""
from __future__ import annotations

import threading

import numpy as np

from cnnlab.layers import Dense, Flatten
from cnnlab.models import Sequential
from cnnlab.training.callbacks import Callback
from cnnlab.utils.runlock import RunFolderBusy, hold_run_folder


def _tiny():
    rng = np.random.default_rng(0)
    x = rng.random((32, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 2, 32)
    model = Sequential([Flatten(), Dense(64, 2, rng=0)], input_shape=(1, 8, 8)).compile("sgd", lr=0.1)
    return model, x, y


class _TryAnotherRun(Callback):
    """During the run, another thread tries the same folder; records what happened."""

    def __init__(self, folder):
        self.folder, self.outcome = folder, []

    def on_epoch_end(self, epoch, logs=None):
        def other():
            try:
                with hold_run_folder(self.folder):
                    self.outcome.append("entered")
            except RunFolderBusy as err:
                self.outcome.append(str(err))
        t = threading.Thread(target=other)
        t.start()
        t.join()


def test_a_second_run_in_the_checkpoint_folder_is_refused_while_fit_runs(tmp_path):
    model, x, y = _tiny()
    probe = _TryAnotherRun(tmp_path)
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, checkpoint=tmp_path / "ckpt.npz", callbacks=[probe])
    assert len(history.history["loss"]) == 2
    assert len(probe.outcome) == 2 and all("in use by another" in o for o in probe.outcome)
    with hold_run_folder(tmp_path):  # released when fit returns
        pass


def test_fit_nests_inside_its_threads_own_hold(tmp_path):
    model, x, y = _tiny()
    with hold_run_folder(tmp_path, "cnnlab train"):  # as cnnlab train does around fit
        history = model.fit(x, y, epochs=1, batch_size=16, verbose=0, checkpoint=tmp_path / "ckpt.npz")
        assert (tmp_path / "ckpt.npz").is_file() and len(history.history["loss"]) == 1


def test_fit_without_a_checkpoint_takes_no_lock(tmp_path):
    model, x, y = _tiny()
    with hold_run_folder(tmp_path):
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
