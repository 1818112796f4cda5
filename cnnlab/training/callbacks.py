"""Callbacks: small objects that ``fit`` calls at fixed points of training (Keras style).

``fit`` calls, in this order::

    validate(params)                         # before training: raise on a bad setting
    on_train_begin(logs)
    for each epoch:  on_epoch_begin(epoch, logs)
        for each batch:  on_batch_end(batch, logs)    # logs: loss, accuracy, size
        on_epoch_end(epoch, logs)            # logs: loss, accuracy, val_loss, val_accuracy, lr
    on_train_end(logs)

Epochs and batches are counted from 0 in the calls (Keras' convention); CSV files and
printed messages count epochs from 1. A callback reaches the model as ``self.model`` and
the optimizer as ``self.model.optimizer``; setting ``self.model.stop_training = True`` ends
training after the current epoch.

Callbacks whose behaviour depends on the past (EarlyStopping's best value, a schedule's
starting learning rate) implement ``state_dict``/``load_state_dict`` so that a resumed run
continues exactly where the interrupted one stopped.

The learning-rate schedules (``StepDecay``, ``CosineDecay``) are callbacks too, in
``cnnlab.training.schedules``.
"""
from __future__ import annotations

import csv
import io as _io
import math
from pathlib import Path

import numpy as np

from cnnlab.training.checkpoints import save_training_state
from cnnlab.utils.files import atomic_write_text, check_writable_folder
from cnnlab.utils.validation import check_positive_int, check_real


# ----- helpers -----------------------------------------------------------------------------
def _check_mode(mode: str, monitor: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner} mode must be 'auto', 'min' or 'max'; received {mode!r}.")
    if mode == "auto":
        return "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
    return mode


def _check_monitor(owner: str, monitor: str, params: dict) -> None:
    keys = params.get("metrics", [])
    if monitor not in keys:
        hint = ""
        if monitor.startswith("val_"):
            hint = " Pass validation_split=... or validation_data=(x_val, y_val) to fit, or monitor a training metric."
        raise ValueError(
            f"{owner} monitors {monitor!r} but fit logs only {', '.join(keys)}.{hint}"
        )


# ----- base ----------------------------------------------------------------------------------
class Callback:
    """Base class; every hook does nothing. Subclasses override the hooks they need.

    Attributes:
        model: the model being trained (set by ``fit`` before ``on_train_begin``).
        params: ``fit``'s settings: epochs, batch_size, steps (batches per epoch), samples,
            metrics (the keys ``on_epoch_end`` will log).
    """

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = dict(params)

    def validate(self, params: dict) -> None:
        """Raise ValueError for settings that cannot work with this run, before training starts."""

    def on_train_begin(self, logs: dict | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_train_end(self, logs: dict | None = None) -> None: ...

    def state_dict(self) -> dict:
        """What a resumed run needs to continue exactly: JSON-able values and NumPy arrays."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output (called after ``on_train_begin`` on resume)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CallbackList:
    """Dispatches each hook to a list of callbacks, in order."""

    def __init__(self, callbacks=None):
        callbacks = list(callbacks or [])
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"callbacks[{i}] must be a cnnlab.callbacks.Callback; received {type(cb).__name__}."
                )
        self.callbacks = callbacks
        # on_batch_end runs once per batch: call only the callbacks that define it
        self._batch_end = [cb for cb in callbacks if type(cb).on_batch_end is not Callback.on_batch_end]

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def setup(self, model, params: dict) -> None:
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)

    def validate(self, params: dict) -> None:
        for cb in self.callbacks:
            cb.validate(params)

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_batch_end(self, batch, logs=None):
        for cb in self._batch_end:
            cb.on_batch_end(batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)


# ----- early stopping ----------------------------------------------------------------------
class EarlyStopping(Callback):
    """Stop training when a monitored value has stopped improving.

    Args:
        monitor: a key of the epoch logs: ``"val_loss"`` (default), ``"val_accuracy"``,
            ``"loss"``, ``"accuracy"``.
        patience: epochs without improvement to wait before stopping (0: stop at the first).
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).
        restore_best_weights: when training ends, put back the weights (and buffers) of the
            best epoch, whether or not training stopped early.
        verbose: print a line when stopping.

    Attributes:
        best: best monitored value so far. best_epoch: its epoch (0-based).
        stopped_epoch: the epoch after which training was stopped, or None.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True, verbose: int = 0):
        super().__init__()
        if not isinstance(monitor, str):
            raise TypeError(f"EarlyStopping monitor must be a string; received {monitor!r}.")
        self.monitor = monitor
        self.patience = check_positive_int(patience, "EarlyStopping patience", minimum=0)
        self.min_delta = abs(check_real(min_delta, "EarlyStopping min_delta"))
        self.mode = _check_mode(mode, monitor, "EarlyStopping")
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None

    def validate(self, params: dict) -> None:
        _check_monitor("EarlyStopping", self.monitor, params)

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self._improved(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: v.copy() for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs "
                      f"(best {self.best:.4f} at epoch {self.best_epoch + 1}); stopping after epoch {epoch + 1}.")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} "
                      f"({self.monitor} = {self.best:.4f}).")

    def state_dict(self) -> dict:
        state = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        if self.best_weights is not None:
            state["best_weights"] = dict(self.best_weights)
        return state

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.wait = float(state["best"]), state["best_epoch"], int(state["wait"])
        weights = state.get("best_weights")
        self.best_weights = None if weights is None else {k: np.array(v) for k, v in weights.items()}

    def __repr__(self) -> str:
        return f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience})"


# ----- model checkpoints ---------------------------------------------------------------------
class ModelCheckpoint(Callback):
    """Save the model (with its optimizer state) at the end of every epoch, or only when the
    monitored value improves. Files are written atomically (temp file + rename).

    Args:
        path: file to write; may hold ``str.format`` fields filled from the epoch logs, e.g.
            ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"`` (``epoch`` counts from 1).
        monitor: the value that decides "best" (default ``"val_loss"``).
        save_best_only: save only when ``monitor`` improves (otherwise every epoch).
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        verbose: print a line for each save.

    The file loads with ``cnnlab.load_model`` (weights only) or ``cnnlab.training.checkpoints.restore``
    (weights and optimizer, ready to train on).
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto",
                 verbose: int = 0):
        super().__init__()
        self.path = str(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _check_mode(mode, monitor, "ModelCheckpoint")
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []

    def validate(self, params: dict) -> None:
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, params)
        check_writable_folder(Path(self.path.split("{")[0] + "x"), "ModelCheckpoint cannot write")

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if self.save_best_only:
            value = logs.get(self.monitor)
            if value is None or not math.isfinite(value):
                return
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = float(value)
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"ModelCheckpoint path {self.path!r} could not be filled from the logs "
                             f"({', '.join(logs)}): {err}") from None
        save_training_state(path, self.model, getattr(self.model, "optimizer", None), epoch=epoch + 1)
        self.saved.append(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = float(state["best"])

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.path!r}, monitor={self.monitor!r}, save_best_only={self.save_best_only})"


# ----- CSV log -------------------------------------------------------------------------------
class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` (from 1) then the logged values in a fixed order
    (loss, accuracy, val_loss, val_accuracy, lr, then any others sorted).

    The whole file is rewritten atomically at every epoch end, so it is always complete.

    Args:
        path: the CSV file.
        separator: field separator.
        append: keep the rows already in the file (e.g. when resuming) instead of starting over.
    """

    _ORDER = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")

    def __init__(self, path, separator: str = ",", append: bool = False):
        super().__init__()
        self.path = Path(path)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger separator must be one character; received {separator!r}.")
        self.separator = separator
        self.append = bool(append)
        self.keys: list[str] | None = None
        self.rows: list[dict] = []

    def validate(self, params: dict) -> None:
        check_writable_folder(self.path, "CSVLogger cannot write")

    def on_train_begin(self, logs=None):
        self.keys, self.rows = None, []
        if self.append and self.path.is_file():
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=self.separator)
                self.rows = list(reader)
                if reader.fieldnames:
                    self.keys = [k for k in reader.fieldnames if k != "epoch"]

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float, np.floating, np.integer))}
        if self.keys is None:
            self.keys = [k for k in self._ORDER if k in logs] + sorted(k for k in logs if k not in self._ORDER)
        self.rows = [r for r in self.rows if str(r.get("epoch")) != str(epoch + 1)]
        self.rows.append({"epoch": epoch + 1, **{k: logs.get(k, "") for k in self.keys}})
        buffer = _io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["epoch", *self.keys], delimiter=self.separator,
                                extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
        atomic_write_text(self.path, buffer.getvalue())

    def __repr__(self) -> str:
        return f"CSVLogger({str(self.path)!r})"
