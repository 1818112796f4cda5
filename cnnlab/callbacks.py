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

Example:
    >>> schedule = StepDecay(step_size=2, gamma=0.5)
    >>> [schedule.lr_at(epoch, 0.1) for epoch in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    >>> [round(lr, 4) for lr in (CosineDecay(4).lr_at(e, 0.1) for e in range(4))]
    [0.1, 0.0854, 0.05, 0.0146]
"""
from __future__ import annotations

import csv
import io as _io
import math
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from cnnlab._checks import check_positive_int, check_real, check_writable_folder


# ----- helpers -----------------------------------------------------------------------------
def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and an atomic rename,
    so a crash never leaves a half-written file. A replaced file keeps its mode and owner.

    Raises:
        ValueError: ``text`` holds characters UTF-8 cannot encode (lone surrogates, e.g. from a
            file name that is not UTF-8); the message names ``path``. Nothing is written.
    """
    from cnnlab.io import keep_mode_and_owner, temp_prefix

    path = Path(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"cannot write {os.fsdecode(path)!a}: its text holds {err.object[err.start:err.end]!a} at "
                         f"character {err.start}, which UTF-8 cannot encode (a name that is not UTF-8?).") from None
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        keep_mode_and_owner(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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

    The file loads with ``cnnlab.load_model`` (weights only) or ``cnnlab.checkpoints.restore``
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
        from cnnlab.checkpoints import save_training_state

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


# ----- learning-rate schedules ---------------------------------------------------------------
class LearningRateScheduler(Callback):
    """Set ``optimizer.lr`` at the start of every epoch from ``schedule(epoch, initial_lr)``.

    ``initial_lr`` is the optimizer's learning rate when training began (kept across a resume),
    so the schedule is a pure function of the epoch and a resumed run gets the same rates.

    Args:
        schedule: ``fn(epoch, initial_lr) -> lr`` with ``epoch`` counted from 0; lr must be > 0.
        verbose: print the rate each epoch.

    Example:
        >>> LearningRateScheduler(lambda epoch, lr0: lr0 / (1 + epoch)).lr_at(3, 0.1)
        0.025
    """

    def __init__(self, schedule: Callable[[int, float], float] | None = None, verbose: int = 0):
        super().__init__()
        if schedule is not None and not callable(schedule):
            raise TypeError(f"LearningRateScheduler schedule must be a function (epoch, initial_lr) -> lr; "
                            f"received {type(schedule).__name__}.")
        self.schedule = schedule
        self.verbose = verbose
        self.initial_lr: float | None = None

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        """The learning rate for ``epoch`` (0-based) when training started at ``initial_lr``."""
        return float(self.schedule(epoch, initial_lr))

    def validate(self, params: dict) -> None:
        if getattr(self.model, "optimizer", None) is None:
            raise ValueError(f"{type(self).__name__} needs a compiled model (model.compile(...)).")
        lr0 = self.model.optimizer.lr
        for epoch in range(params.get("epochs", 0)):
            lr = self.lr_at(epoch, lr0)
            if not (math.isfinite(lr) and lr > 0):
                raise ValueError(f"{self!r} gives learning rate {lr} for epoch {epoch + 1}; it must be "
                                 f"finite and > 0 for every one of the {params['epochs']} epochs.")

    def on_train_begin(self, logs=None):
        self.initial_lr = float(self.model.optimizer.lr)

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.lr_at(epoch, self.initial_lr)
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"{self!r} gave learning rate {lr} for epoch {epoch + 1}; it must be finite and > 0.")
        self.model.optimizer.lr = lr
        if self.verbose:
            print(f"{type(self).__name__}: epoch {epoch + 1} learning rate {lr:.3g}")

    def state_dict(self) -> dict:
        return {"initial_lr": self.initial_lr}

    def load_state_dict(self, state: dict) -> None:
        self.initial_lr = None if state.get("initial_lr") is None else float(state["initial_lr"])


class StepDecay(LearningRateScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs (PyTorch ``StepLR``):
    ``lr = initial_lr * gamma ** (epoch // step_size)``.

    Args:
        step_size: epochs between decays (>= 1).
        gamma: multiplicative factor, in (0, 1].
    """

    def __init__(self, step_size: int, gamma: float = 0.1, verbose: int = 0):
        super().__init__(None, verbose)
        self.step_size = check_positive_int(step_size, "StepDecay step_size")
        self.gamma = check_real(gamma, "StepDecay gamma", 0.0, 1.0, low_inclusive=False)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        return initial_lr * self.gamma ** (epoch // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class CosineDecay(LearningRateScheduler):
    """Cosine annealing from the initial rate to ``min_lr`` over ``total_epochs`` (PyTorch
    ``CosineAnnealingLR`` stepped once per epoch)::

        lr = min_lr + (initial_lr - min_lr) * (1 + cos(pi * epoch / total_epochs)) / 2

    Epoch 0 uses ``initial_lr``; epochs from ``total_epochs`` on stay at ``min_lr`` (which must
    then be > 0: fit checks this before training).

    Args:
        total_epochs: length of the decay (usually fit's ``epochs``).
        min_lr: final learning rate (>= 0).
    """

    def __init__(self, total_epochs: int, min_lr: float = 0.0, verbose: int = 0):
        super().__init__(None, verbose)
        self.total_epochs = check_positive_int(total_epochs, "CosineDecay total_epochs")
        self.min_lr = check_real(min_lr, "CosineDecay min_lr", 0.0)

    def lr_at(self, epoch: int, initial_lr: float) -> float:
        t = min(epoch, self.total_epochs) / self.total_epochs
        return self.min_lr + (initial_lr - self.min_lr) * (1 + math.cos(math.pi * t)) / 2

    def __repr__(self) -> str:
        return f"CosineDecay(total_epochs={self.total_epochs}, min_lr={self.min_lr})"


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
