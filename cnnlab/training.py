"""Training: ``compile_model``, ``fit``, ``evaluate`` and ``predict`` (checkpoints: ``cnnlab.checkpoints``).

``fit`` reads top to bottom in labelled sections (nanoGPT's train.py, CS231n's Solver)::

    1. validate inputs     every check, before any state changes
    2. set up              rng, history, resume, callbacks, progress
    3. per batch           shuffle -> forward -> loss -> backward -> step -> metrics/progress
    4. end of epoch        validate, callbacks, checkpoint

Randomness: one ``numpy.random.Generator`` made from ``seed`` owns shuffling, augmentation
and every Dropout mask (it replaces the ``rng`` of each layer that has one), so the same
seed gives the same weights, bit for bit. A checkpoint stores that generator's exact state,
so a resumed run ends with the same weights as an uninterrupted one.

Data is never converted silently: ``x`` must already have the model's float dtype (uint8
pixels are refused with the fix, ``x.astype('float32') / 255``, and float64 data for a
float32 model with ``x.astype(np.float32)``).

Example:
    >>> from cnnlab.layers import Dense, Flatten
    >>> from cnnlab.models import Sequential
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((64, 1, 2, 2), dtype=np.float32); y = (x[:, 0, 0, 0] > 0.5).astype(np.int64)
    >>> model = Sequential([Flatten(), Dense(4, 2, rng=0)], input_shape=(1, 2, 2))
    >>> _ = model.compile("adam", lr=0.05)
    >>> history = model.fit(x, y, epochs=30, batch_size=16, seed=0, verbose=0)
    >>> history.history["accuracy"][-1] > 0.9
    True
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np

from cnnlab._checks import check_array, check_positive_int, check_real, check_writable_folder
from cnnlab.callbacks import CallbackList
from cnnlab.doctor import Doctor
from cnnlab.checkpoints import (TrainingState, _check_resume, load_checkpoint, restore, save_checkpoint,
                                save_training_state)
from cnnlab.history import History
from cnnlab.models.budget import check_compute_budget

# the checkpoint functions and History live in their own modules; importable from here too
__all__ = ["FitConfig", "History", "TrainingState", "compile_model", "evaluate", "fit", "load_checkpoint", "predict",
           "restore", "save_checkpoint", "save_training_state"]

METRICS = ("accuracy",)
_METRIC_ALIASES = {"accuracy": "accuracy", "acc": "accuracy"}


# ===== configuration ==============================================================================
@dataclass
class FitConfig:
    """Every setting of ``fit`` that has a default, in one place.

    Attributes:
        epochs: total number of epochs (a resumed run counts the epochs already done).
        batch_size: samples per gradient step; the last batch of an epoch may be smaller.
        validation_split: fraction of (x, y) held out for validation, taken from the END
            of the arrays before any shuffling (as Keras does), in [0, 1).
        shuffle: reshuffle the training samples every epoch.
        verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        seed: seed of the run's Generator (shuffling, augmentation, dropout); None for fresh
            entropy.
        augment: None/0 for none; an int k to shift each training image by up to k pixels
            (``cnnlab.datasets.preprocessing.random_shift``); or ``fn(x_batch, rng) -> x_batch``.
        doctor: True, False, or a configured ``cnnlab.doctor.Doctor``.
        eval_batch_size: batch size for the validation pass.
    """

    epochs: int = 1
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    verbose: int = 1
    seed: int | None = None
    augment: int | Callable | None = None
    doctor: bool | Doctor = True
    eval_batch_size: int = 256

    def validate(self) -> None:
        """Raise TypeError/ValueError naming the first bad setting."""
        check_positive_int(self.epochs, "epochs")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.eval_batch_size, "eval_batch_size")
        check_real(self.validation_split, "validation_split", 0.0, 1.0, high_inclusive=False)
        if self.verbose not in (0, 1, 2) or isinstance(self.verbose, bool):
            raise ValueError(f"verbose must be 0 (silent), 1 (progress bar) or 2 (one line per epoch); "
                             f"received {self.verbose!r}.")
        if not isinstance(self.shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False; received {self.shuffle!r}.")
        if self.seed is not None and (not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool)
                                      or self.seed < 0):
            raise TypeError(f"seed must be a non-negative int or None; received {self.seed!r}.")
        a = self.augment
        if not (a is None or a is False or callable(a)
                or (isinstance(a, (int, np.integer)) and not isinstance(a, bool) and a >= 0)):
            raise TypeError(f"augment must be None, a maximum shift in pixels (int >= 0) or a function "
                            f"fn(x_batch, rng) -> x_batch; received {a!r}.")
        if not isinstance(self.doctor, (bool, Doctor)):
            raise TypeError(f"doctor must be True, False or a cnnlab.doctor.Doctor; received {self.doctor!r}.")

    def to_json(self) -> dict:
        """The settings as JSON-able values (a function is stored by name)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["augment"] = self.augment if (self.augment is None or isinstance(self.augment, (bool, int))) \
            else getattr(self.augment, "__name__", repr(self.augment))
        d["doctor"] = bool(self.doctor)
        return d


# ===== compile =====================================================================================
def compile_model(model, optimizer="adam", loss="cross_entropy", metrics=("accuracy",), **optimizer_kwargs):
    """Choose the optimizer, loss and metrics; binds the optimizer to ``model.parameters()``.

    Args:
        model: a ``Sequential``.
        optimizer: ``"sgd"``, ``"adam"``, ``"adamw"`` or an optimizer object.
        loss: ``"cross_entropy"`` or a loss object with ``forward(logits, labels)`` and ``backward()``.
        metrics: names of the metrics to report; ``"accuracy"`` (alias ``"acc"``) is available.
        **optimizer_kwargs: optimizer settings, e.g. ``lr=1e-3``, ``momentum=0.9``.

    Returns:
        the model, with ``model.optimizer``, ``model.loss_fn`` and ``model.metrics`` set.

    Raises:
        ValueError / TypeError: unknown names or settings (nothing is changed then).
    """
    from cnnlab.losses import get_loss
    from cnnlab.optim import get_optimizer

    if isinstance(metrics, str):
        metrics = (metrics,)
    try:
        metrics = list(metrics or ())
    except TypeError:
        raise TypeError(f"metrics must be a list of names such as ['accuracy']; received {metrics!r}.") from None
    names = []
    for m in metrics:
        if not isinstance(m, str) or m.lower() not in _METRIC_ALIASES:
            raise ValueError(f"unknown metric {m!r}; available metrics: {', '.join(METRICS)}.")
        names.append(_METRIC_ALIASES[m.lower()])
    params = model.parameters()
    if not params:
        raise ValueError("this model has no trainable parameters; add a layer with weights (Conv2d, Dense).")
    opt = get_optimizer(optimizer, **optimizer_kwargs)
    loss_fn = get_loss(loss)
    opt.set_parameters(params)
    model.optimizer, model.loss_fn, model.metrics = opt, loss_fn, names
    return model


def _require_compiled(model):
    opt, loss_fn = getattr(model, "optimizer", None), getattr(model, "loss_fn", None)
    if opt is None or loss_fn is None:
        raise RuntimeError("the model is not compiled: call model.compile(optimizer='adam', lr=1e-3) "
                           "(or cnnlab.training.compile_model) before fit.")
    return opt, loss_fn


# ===== input checks ================================================================================
def _check_x(model, x, name: str = "x") -> np.ndarray:
    """x must be a float array of the model's dtype and shape (N, *input_shape), finite."""
    check_array(x, name)
    if np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_:
        raise TypeError(
            f"{name} has dtype {x.dtype}; the model needs floats of about unit scale and cnnlab never "
            f"converts silently. For 8-bit pixels use {name} = {name}.astype('float32') / 255."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a float array; received dtype {x.dtype}.")
    dtype = model.dtype
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {x.dtype} but the model's weights are {dtype}; cnnlab never converts "
            f"silently: pass {name}.astype(np.{dtype}) (or convert the model with model.astype(np.{x.dtype}))."
        )
    shape = model.input_shape
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {x.shape}).")
    if shape is not None and tuple(x.shape[1:]) != tuple(shape):
        hint = ""
        if x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == tuple(shape[1:]) + tuple(shape[:1]):
            hint = f" cnnlab is channels-first (N, C, H, W); for channels-last data use {name}.transpose(0, 3, 1, 2)."
        elif x.ndim == len(shape) and shape[0] == 1 and tuple(x.shape[1:]) == tuple(shape[1:]):
            hint = f" Add the channel axis: {name}[:, None] (or cnnlab.datasets.preprocessing.add_channel_axis)."
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, shape))}) for this model; "
                         f"received {x.shape}.{hint}")
    # one example's forward pass must fit in memory (a model without input_shape is checked here)
    check_compute_budget(model, tuple(x.shape[1:]), what=f"this model on {name} of shape {x.shape}")
    # The sum is finite iff every value is (barring overflow, which the exact check then sorts out).
    if not math.isfinite(float(np.sum(x, dtype=np.float64))):
        bad = ~np.isfinite(x)
        if bad.any():
            first = np.argwhere(bad)[0]
            raise ValueError(f"{name} holds {int(bad.sum())} NaN or infinite values (the first at index "
                             f"{tuple(int(i) for i in first)}); clean the data first.")
    return x


def _n_classes(model, sample_shape) -> int:
    out = model.layer_shapes(tuple(sample_shape))[-1]
    if len(out) != 1:
        raise ValueError(f"the model's output must be (N, K) class scores; its per-sample output shape is {out}. "
                         f"Add Flatten() and Dense(..., K) at the end.")
    return int(out[0])


def _check_xy(model, x, y, xname: str = "x", yname: str = "y") -> tuple[np.ndarray, np.ndarray, int]:
    _check_x(model, x, xname)
    check_array(y, yname)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        if y.ndim == 2 and y.shape[0] == x.shape[0]:
            raise ValueError(f"{yname} must be integer class indices of shape ({x.shape[0]},); received shape "
                             f"{y.shape}. For one-hot labels use {yname}.argmax(1).")
        raise ValueError(f"{xname} has {x.shape[0]} samples but {yname} has shape {y.shape}; expected "
                         f"({x.shape[0]},): one label per sample.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{yname} must be integer class indices; received dtype {y.dtype}. "
                        f"Use {yname}.astype(np.int64).")
    k = _n_classes(model, x.shape[1:])
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= k:
        raise ValueError(f"{yname} must be class indices in [0, {k - 1}] for this model's {k} outputs; "
                         f"received values from {lo} to {hi}.")
    return x, y, k


# ===== randomness ==================================================================================
def _bind_rng(model, rng: np.random.Generator) -> None:
    """Make every layer with an ``rng`` attribute (Dropout) draw from the run's generator."""
    for layer in model.layers:
        if hasattr(layer, "rng"):
            layer.rng = rng


def _make_augment(augment):
    if augment is None or augment is False or (isinstance(augment, (int, np.integer)) and augment == 0):
        return None
    if callable(augment):
        return augment
    from cnnlab.datasets.preprocessing import random_shift

    k = int(augment)

    def shift(xb, rng):
        return random_shift(xb, k, rng)

    return shift


# ===== evaluate and predict ========================================================================
def _batched_forward(model, x: np.ndarray, batch_size: int):
    """Yield (start, logits) for consecutive batches, in inference mode (no caches kept).

    The same numbers as ``model.forward``; Conv2d -> ReLU -> MaxPool2d triples run fused
    (see ``_training_passes``): about 1.8x faster inference for simple_cnn.
    """
    steps = _fused_steps(model, x.shape[1:])
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        if steps is None:
            yield start, model.forward(xb, training=False)
            continue
        model._check_input(xb)
        for step in steps:
            xb = step.forward(xb, training=False)
        yield start, xb


def evaluate(model, x, y, batch_size: int = 256, verbose: int = 0) -> tuple[float, float]:
    """Mean loss and accuracy over ``(x, y)``, computed in batches in inference mode.

    Uses the compiled loss (cross-entropy for an uncompiled model).

    Args:
        x: float inputs of the model's dtype.
        y: integer labels.
        batch_size: images per forward pass (memory only; the result does not depend on it
            beyond float rounding).
        verbose: 1 shows a progress bar.

    Returns:
        ``(loss, accuracy)`` as Python floats.

    Shape:
        x: (N, *model.input_shape). y: (N,).
    """
    from cnnlab.losses import CrossEntropyLoss

    check_positive_int(batch_size, "batch_size")
    x, y, _ = _check_xy(model, x, y)
    loss_fn = getattr(model, "loss_fn", None) or CrossEntropyLoss()
    total, correct = 0.0, 0
    batches = _batched_forward(model, x, batch_size)
    if verbose:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-x.shape[0] // batch_size), desc="evaluate", unit="batch", leave=False)
    for start, logits in batches:
        yb = y[start:start + logits.shape[0]]
        total += loss_fn.forward(logits, yb) * len(yb)
        correct += int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
    return total / x.shape[0], correct / x.shape[0]


def predict(model, x, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
    """Class probabilities for ``x``, computed in batches in inference mode (no caches kept),
    so 60,000 images never need one giant activation.

    Applies softmax to the model's scores, unless the model already ends in Softmax.

    Returns:
        probabilities, rows summing to 1, in the model's dtype.

    Shape:
        x: (N, *model.input_shape). output: (N, K).
    """
    from cnnlab.ops.activation import softmax

    check_positive_int(batch_size, "batch_size")
    _check_x(model, x)
    ends_in_softmax = bool(model.layers) and type(model.layers[-1]).__name__ == "Softmax"
    out = None
    batches = _batched_forward(model, x, batch_size)
    if verbose:
        from tqdm.auto import tqdm

        batches = tqdm(batches, total=-(-x.shape[0] // batch_size), desc="predict", unit="batch", leave=False)
    for start, scores in batches:
        if out is None:
            out = np.empty((x.shape[0], *scores.shape[1:]), dtype=scores.dtype)  # (N, K)
        out[start:start + scores.shape[0]] = scores if ends_in_softmax else softmax(scores, axis=1)
    return out


# ===== interruption =================================================================================
class _StopRequested(Exception):
    """Raised at a batch boundary after Ctrl-C."""


class _Diverged(Exception):
    def __init__(self, epoch, batch, loss, location):
        super().__init__()
        self.epoch, self.batch, self.loss, self.location = epoch, batch, loss, location


@contextlib.contextmanager
def _graceful_sigint(flag: dict, announce: bool):
    """Ctrl-C sets ``flag["stop"]`` so training stops at the next batch boundary; a second
    Ctrl-C raises KeyboardInterrupt at once. Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        flag["stop"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if announce:
            print("\nInterrupted: stopping after this batch (Ctrl-C again to stop at once).", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # e.g. embedded interpreters
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ===== progress ======================================================================================
class _Progress:
    """A tqdm bar per epoch (verbose=1), one line per epoch (verbose=2), or nothing (0)."""

    def __init__(self, verbose: int, epochs: int, steps: int):
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.bar = None
        self._last = 0.0

    def start_epoch(self, epoch: int, initial: int = 0) -> None:
        self.t0 = self.t_last = time.perf_counter()
        self.seen = 0
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.steps, initial=initial, desc=f"Epoch {epoch + 1}/{self.epochs}",
                            unit="batch", file=sys.stderr, dynamic_ncols=True, leave=True)

    def batch(self, n: int, mean_loss: float, mean_acc: float) -> None:
        self.seen += n
        self.t_last = time.perf_counter()
        if self.bar is None:
            return
        if self.t_last - self._last > 0.25:  # formatting the postfix every batch would cost more than it shows
            self._last = self.t_last
            rate = self.seen / max(self.t_last - self.t0, 1e-9)
            self.bar.set_postfix_str(f"loss={mean_loss:.4f} accuracy={mean_acc:.4f} {rate:,.0f} img/s",
                                     refresh=False)  # the same metric names as the epoch's summary
        self.bar.update(1)

    def end_epoch(self, epoch: int, logs: dict) -> float:
        """Show the epoch's numbers; returns the epoch's wall time (validation included)."""
        elapsed = time.perf_counter() - self.t0
        rate = self.seen / max(self.t_last - self.t0, 1e-9)  # training images only
        parts = [f"{k}={v:.4f}" for k, v in logs.items() if k != "lr"] + [f"lr={logs['lr']:.3g}", f"{rate:,.0f} img/s"]
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join(parts), refresh=True)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.epochs} - {elapsed:.1f}s - " + " - ".join(parts), flush=True)
        return elapsed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ===== fit ============================================================================================
def fit(model, x, y, epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0, validation_data=None,
        shuffle: bool = True, callbacks=None, verbose: int = 1, seed: int | None = None, augment=None,
        doctor=True, resume_from=None, checkpoint=None, allow_change=("epochs",)) -> History:
    """Train a compiled model on ``(x, y)`` with mini-batch gradient descent.

    Args:
        model: a compiled ``Sequential`` (``model.compile(...)``).
        x: float inputs of the model's dtype, already scaled (e.g. pixels / 255).
        y: integer class labels in [0, K).
        epochs, batch_size, validation_split, shuffle, verbose, seed, augment, doctor:
            see ``FitConfig``.
        validation_data: ``(x_val, y_val)``, used instead of ``validation_split``.
        callbacks: list of ``cnnlab.callbacks.Callback``.
        resume_from: a checkpoint written by ``checkpoint=``: continue that run where it
            stopped (weights, optimizer, epoch, history, generator state; the seed is ignored).
            ``epochs`` is the total, counting the epochs already done.
        checkpoint: a file to write a checkpoint to at the end of every epoch (atomically;
            also on Ctrl-C, at the batch where training stopped).
        allow_change: on resume, the settings that may differ from the run's (see
            ``cnnlab.resume_checks.CHANGEABLE``): ``"epochs"`` (allowed by default: a larger
            total trains further) and ``"lr"`` (the new learning rate, a schedule scaled to it).
            Any other difference (batch size, validation split, augmentation, seed, number of
            samples, optimizer settings, callbacks) is refused with the differences listed.

    Returns:
        a ``History``.

    Raises:
        TypeError / ValueError: bad data or settings, before anything is changed.
        RuntimeError: the model is not compiled.

    Shape:
        x: (N, *model.input_shape). y: (N,).

    Divergence: a non-finite loss stops training with a message naming the epoch, the batch
    and the first layer whose weights, output or gradient went non-finite; the last
    checkpoint (end of the previous epoch) is kept. NumPy's floating-point warnings are
    silenced during fit, since this diagnosis replaces them.
    """
    # ---------------------------------------------------------------- 1. validate inputs
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, validation_split=validation_split, shuffle=shuffle,
                    verbose=verbose, seed=seed, augment=augment, doctor=doctor)
    cfg.validate()
    optimizer, loss_fn = _require_compiled(model)
    x, y, n_classes = _check_xy(model, x, y, "x", "y")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val).")
        x_val, y_val, _ = _check_xy(model, validation_data[0], validation_data[1], "x_val", "y_val")
        x_train, y_train = x, y
    elif cfg.validation_split > 0:
        n_val = int(x.shape[0] * cfg.validation_split)
        if n_val < 1 or n_val >= x.shape[0]:
            raise ValueError(f"validation_split={cfg.validation_split} of {x.shape[0]} samples leaves "
                             f"{n_val} for validation and {x.shape[0] - n_val} for training; both need at least 1.")
        split = x.shape[0] - n_val  # Keras holds out the LAST samples, before shuffling
        x_train, y_train, x_val, y_val = x[:split], y[:split], x[split:], y[split:]
    else:
        x_train, y_train, x_val, y_val = x, y, None, None
    n_train = x_train.shape[0]
    steps = -(-n_train // cfg.batch_size)
    augment_fn = _make_augment(cfg.augment)
    callback_list = CallbackList(callbacks)
    metric_keys = ["loss", "accuracy"] + (["val_loss", "val_accuracy"] if x_val is not None else []) + ["lr"]
    if checkpoint is not None:
        checkpoint = check_checkpoint_path(checkpoint)
    check_batch_statistics(model, x_train.shape[1:], n_train, cfg.batch_size)
    settings = _run_settings(cfg, optimizer, callback_list, n_train, 0 if x_val is None else len(x_val))
    resumed = None
    if resume_from is not None:
        resumed = _check_resume(resume_from, model, optimizer, n_train, cfg.epochs, steps=steps,
                                callbacks=list(callback_list), settings=settings, allow_change=allow_change)
    params = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "steps": steps, "samples": n_train,
              "metrics": metric_keys}
    callback_list.setup(model, params)
    callback_list.validate(params)
    doc = cfg.doctor if isinstance(cfg.doctor, Doctor) else Doctor(enabled=bool(cfg.doctor))
    doc.reset(n_classes)
    doc.check_model(model, loss_fn)
    doc.check_inputs(x_train)

    # ---------------------------------------------------------------- 2. set up (state changes from here)
    if resumed is not None:
        model.load_state_dict(resumed.model.state_dict())
        optimizer.load_state_dict(resumed.optimizer_state)
        rng = resumed.make_rng()
        history = resumed.history
        history.stop_reason = history.stopped_at = None
        start_epoch = int(resumed.epoch)
        progress = resumed.progress
    else:
        rng = np.random.default_rng(cfg.seed)
        history = History()
        start_epoch, progress = 0, None
    history.params = params
    _bind_rng(model, rng)
    model.stop_training = False
    callback_list.on_train_begin({})
    if resumed is not None:  # callbacks continue from their saved state (matched by position and class)
        for cb, entry in zip(callback_list, resumed.callback_states):
            if entry.get("class") == type(cb).__name__:
                cb.load_state_dict(entry["state"])
        if "lr" in resumed.changed:
            _apply_new_lr(optimizer, list(callback_list), settings["optimizer"]["lr"], resumed.config)
    bar = _Progress(cfg.verbose, cfg.epochs, steps)
    stop = {"stop": False}
    config_json = settings
    logs: dict = {}
    first_batch = int(progress["batch"]) if progress else 0

    def write_checkpoint(epochs_done: int, position: dict | None = None) -> None:
        save_checkpoint(checkpoint, model, optimizer, epochs_done, history, rng, config=config_json,
                        callbacks=list(callback_list), progress=position)

    forward, backward = _training_passes(model, x_train.shape[1:])

    epoch = start_epoch
    b = first_batch
    phase = "start"
    perm = None
    sums = {"loss": 0.0, "correct": 0, "seen": 0}
    try:
        with _graceful_sigint(stop, cfg.verbose > 0), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(start_epoch, cfg.epochs):
                # ---------------------------------------------------- shuffle
                if progress is not None:  # resuming inside an interrupted epoch
                    perm, sums, first_batch = progress["permutation"], dict(progress["sums"]), int(progress["batch"])
                    progress = None
                else:
                    perm = rng.permutation(n_train) if cfg.shuffle else np.arange(n_train)
                    sums, first_batch = {"loss": 0.0, "correct": 0, "seen": 0}, 0
                callback_list.on_epoch_begin(epoch, {})
                bar.start_epoch(epoch, first_batch)
                for b in range(first_batch, steps):
                    phase = "forward"
                    idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
                    xb, yb = x_train[idx], y_train[idx]
                    if augment_fn is not None:
                        xb = augment_fn(xb, rng)
                    # ------------------------------------------------ forward
                    logits = forward(xb)
                    # ------------------------------------------------ loss
                    loss = loss_fn.forward(logits, yb)
                    if not math.isfinite(loss):
                        raise _Diverged(epoch, b, loss, doc.locate_nonfinite(model, loss_fn, xb, yb))
                    # ------------------------------------------------ backward
                    optimizer.zero_grad()
                    backward(loss_fn.backward())
                    # ------------------------------------------------ step
                    phase = "step"
                    optimizer.step()
                    phase = "done"
                    # ------------------------------------------------ metrics and progress
                    n = len(yb)
                    correct = int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
                    sums["loss"] += loss * n
                    sums["correct"] += correct
                    sums["seen"] += n
                    doc.after_step(model, epoch, b, loss, xb)
                    callback_list.on_batch_end(b, {"loss": loss, "accuracy": correct / n, "size": n})
                    bar.batch(n, sums["loss"] / sums["seen"], sums["correct"] / sums["seen"])
                    if stop["stop"]:
                        raise _StopRequested
                # ---------------------------------------------------- end of epoch: validate
                phase = "epoch_end"  # an interruption from here on keeps the previous checkpoint
                logs = {"loss": sums["loss"] / sums["seen"], "accuracy": sums["correct"] / sums["seen"]}
                if x_val is not None:
                    logs["val_loss"], logs["val_accuracy"] = evaluate(model, x_val, y_val, cfg.eval_batch_size)
                logs["lr"] = float(optimizer.lr)
                bar.end_epoch(epoch, logs)
                doc.end_epoch(epoch, logs["loss"], logs["lr"], logs["accuracy"])
                history._append(epoch, logs)
                history.diagnostics = list(_merge(history.diagnostics, doc.records))
                # ---------------------------------------------------- callbacks
                callback_list.on_epoch_end(epoch, dict(logs))
                # ---------------------------------------------------- checkpoint
                if checkpoint is not None:
                    write_checkpoint(epoch + 1)
                if getattr(model, "stop_training", False):
                    history.stop_reason = "early_stopping"
                    break
        if history.stop_reason is None:
            history.stop_reason = "completed"
    except _Diverged as d:
        _report_divergence(model, optimizer, history, doc, d, checkpoint)
    except (_StopRequested, KeyboardInterrupt):
        _handle_interrupt(history, epoch, b, phase, perm, sums, checkpoint, write_checkpoint, cfg.verbose)
    finally:
        bar.close()
    history.diagnostics = list(_merge(history.diagnostics, doc.records))
    callback_list.on_train_end(dict(logs))
    return history


def _run_settings(cfg: FitConfig, optimizer, callbacks, n_train: int, n_val: int) -> dict:
    """What a checkpoint stores to compare on resume: the fit settings, the numbers of samples,
    the optimizer's class and settings as compiled, and the classes of the callbacks that carry
    state into a resume (schedules, early stopping; a logger or a timer may come and go)."""
    from cnnlab.callbacks import Callback

    stateful = [type(cb).__name__ for cb in callbacks if type(cb).state_dict is not Callback.state_dict]
    return {**cfg.to_json(), "samples": n_train, "val_samples": n_val,
            "optimizer": {"class": type(optimizer).__name__, **optimizer.get_config()}, "callbacks": stateful}


def _apply_new_lr(optimizer, callbacks, new_lr: float, saved: dict) -> None:
    """``allow_change=("lr",)``: continue at ``new_lr`` instead of the run's learning rate; a
    schedule keeps its shape, scaled to the new rate (its ``initial_lr`` becomes ``new_lr``)."""
    old = (saved or {}).get("optimizer", {}).get("lr") if isinstance((saved or {}).get("optimizer"), dict) else None
    scale = new_lr / old if isinstance(old, (int, float)) and old > 0 else None
    optimizer.lr = optimizer.lr * scale if scale is not None else new_lr
    for cb in callbacks:
        if getattr(cb, "initial_lr", None) is not None:
            cb.initial_lr = new_lr


def check_checkpoint_path(checkpoint) -> Path:
    """The checkpoint file must be writable: its folder exists and is writable, and the path
    is not a folder (found before the first epoch, not after it with a temp file's name)."""
    path = Path(checkpoint)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write the checkpoint {path}: it is a folder; pass a file name such as "
                                f"{path / 'checkpoint.npz'}.")
    return check_writable_folder(path, "cannot write the checkpoint")


def check_batch_statistics(model, sample_shape, n_train: int, batch_size: int) -> None:
    """Refuse, before training, a run in which a batch-norm layer would see a batch with one
    value per channel (BatchNorm1d and a last batch of one example; BatchNorm2d on 1x1 maps):
    its variance is 0/0, so it would fail mid-epoch after the weights had changed.

    Why refuse rather than ``drop_last``: dropping samples silently changes which data a run
    sees (and the bits of every existing run); the fix is one choice away and the message
    names both: a batch size that leaves no single-example batch, or one more/fewer sample.
    """
    from cnnlab.layers.normalization import BatchNorm1d, BatchNorm2d  # training sits above layers

    sizes = {min(batch_size, n_train)}
    if n_train % batch_size:
        sizes.add(n_train % batch_size)
    try:
        shapes = [tuple(sample_shape)] + model.layer_shapes(tuple(sample_shape))
    except (ValueError, TypeError):
        return  # fit's own checks name the layer that does not fit
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, (BatchNorm1d, BatchNorm2d)):
            continue
        per_channel = math.prod(shapes[i][1:])  # values per channel per example
        for n in sorted(sizes):
            if n * per_channel == 1:
                good = next((b for b in range(batch_size, 0, -1) if n_train % b != 1 and b > 1), None)
                fix = f"use batch_size={good} or drop or add one training sample" if good else \
                    "use batch_size >= 2 and at least 2 training samples"
                raise ValueError(
                    f"layer {i} ({type(layer).__name__}) would get a training batch of {n} example with one value "
                    f"per channel ({n_train} samples in batches of {batch_size} leave a last batch of {n}): batch "
                    f"norm needs more than 1 value per channel to compute a variance. Fix: {fix}."
                )


def _training_passes(model, sample_shape):
    """``(forward, backward)`` for one training batch of a Sequential: the same numbers as
    ``model.forward(x, training=True)`` / ``model.backward(dout)``, faster:

    * Conv2d -> ReLU -> MaxPool2d triples run as one fused op (``cnnlab.layers.conv.fuse_layers``):
      a single pass over the conv's output instead of five;
    * the first layer's input gradient, d(loss)/d(data), is never computed (for a first Conv2d
      that is one GEMM and one col2im per batch: what PyTorch skips for inputs that do not
      require grad).

    A model whose class overrides ``forward`` or ``backward`` keeps its own.
    """
    from cnnlab.layers.conv import Conv2d, ConvReLUMaxPool

    steps = _fused_steps(model, sample_shape)
    if steps is None:
        return (lambda xb: model.forward(xb, training=True)), model.backward
    first, rest = steps[0], steps[:0:-1]  # rest: every other step, last first
    skip_dx = type(first) in (Conv2d, ConvReLUMaxPool)  # their backward takes need_dx

    def forward(xb):
        model._check_input(xb)  # augment functions may return anything
        for step in steps:
            xb = step.forward(xb, training=True)
        return xb

    def backward(dout):
        for step in rest:
            dout = step.backward(dout)
        return first.backward(dout, need_dx=False) if skip_dx else first.backward(dout)

    return forward, backward


def _fused_steps(model, sample_shape):
    """``cnnlab.layers.conv.fuse_layers`` of a plain Sequential's layers; None for a model
    whose class overrides ``forward`` or ``backward`` (it keeps its own)."""
    from cnnlab.layers.conv import fuse_layers
    from cnnlab.models import Sequential

    cls = type(model)
    if cls.forward is not Sequential.forward or cls.backward is not Sequential.backward or not model.layers:
        return None
    try:
        return fuse_layers(model.layers, sample_shape)
    except (ValueError, TypeError):  # shapes that do not fit: model.forward names the layer
        return None


def _merge(existing: list, new: list):
    seen = {(d.kind, d.epoch, d.batch, d.message) for d in existing}
    yield from existing
    for d in new:
        if (d.kind, d.epoch, d.batch, d.message) not in seen:
            yield d


def _report_divergence(model, optimizer, history: History, doc: Doctor, d: _Diverged, checkpoint) -> None:
    loc = d.location
    keep = ""
    if checkpoint is not None and Path(checkpoint).is_file():
        history.last_good_checkpoint = str(checkpoint)
        keep = (f" The last good checkpoint, {checkpoint} (end of epoch {len(history.epoch)}), is kept; "
                f"resume from it with a lower learning rate.")
    message = (f"training diverged at epoch {d.epoch + 1}, batch {d.batch + 1}: the loss is {d.loss}. The first "
               f"non-finite value appeared in {loc['label']}. Fix: lower the learning rate (now "
               f"{optimizer.lr:g}), e.g. by 10x; check the inputs are scaled to [0, 1]; BatchNorm or a smaller "
               f"initialization also help.{keep}")
    details = {"loss": str(d.loss), "where": loc["where"], "layer": loc["layer"],
               "layer_name": None if loc["layer"] is None else model.layers[loc["layer"]].name}
    doc.report("non_finite", message, d.epoch + 1, d.batch + 1, details, force=True)
    history.stop_reason = "diverged"
    history.stopped_at = {"epoch": d.epoch + 1, "batch": d.batch + 1}


def _handle_interrupt(history: History, epoch: int, b: int, phase: str, perm, sums, checkpoint, write_checkpoint,
                      verbose: int) -> None:
    history.stop_reason = "interrupted"
    history.stopped_at = {"epoch": epoch + 1, "batch": b + 1}  # the batch during or after which it came
    note = ""
    if checkpoint is not None:
        if phase == "done" and perm is not None:
            # a consistent point: batch b finished; the next run starts at batch b + 1
            write_checkpoint(epoch, {"batch": b + 1, "permutation": perm, "sums": sums})
            history.last_good_checkpoint = str(checkpoint)
            note = f" Checkpoint saved to {checkpoint}; continue with fit(..., resume_from={str(checkpoint)!r})."
        elif Path(checkpoint).is_file():
            history.last_good_checkpoint = str(checkpoint)
            note = (f" The interruption came in the middle of a batch, so the checkpoint from the end of "
                    f"epoch {len(history.epoch)} ({checkpoint}) is kept.")
    if verbose:
        print(f"Training interrupted at epoch {epoch + 1}, batch {history.stopped_at['batch']}.{note}",
              file=sys.stderr)
