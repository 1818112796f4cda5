"""``fit``: the training loop (``compile``, ``inference`` and ``checkpoints`` are its neighbours).

``fit`` reads top to bottom in labelled sections (nanoGPT's train.py, CS231n's Solver)::

    1. validate inputs     every check, before any state changes
    2. set up              rng, history, resume, callbacks, progress
    3. per batch           shuffle -> model.forward -> loss -> model.backward -> step -> metrics
    4. end of epoch        validate, callbacks, checkpoint

``fit`` calls the model's own ``forward(x, training=True)`` and ``backward``; the model runs
its layers through its fusion plan (``cnnlab.models.fusion``).

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
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.engines import runtime
from cnnlab.training.callbacks import Callback, CallbackList
from cnnlab.training.checkpoints import check_checkpoint_path, check_resume, save_checkpoint
from cnnlab.training.compile import require_compiled
from cnnlab.training.config import FitConfig
from cnnlab.training.data import bind_rng, check_batch_statistics, check_xy, make_augment
from cnnlab.training.doctor import Doctor
from cnnlab.training.inference import evaluate
from cnnlab.training.history import History
from cnnlab.training.progress import Diverged, Progress, StopRequested, graceful_sigint
from cnnlab.utils.runlock import hold_run_folder

__all__ = ["fit", "run_settings"]


def fit(model, x, y, epochs: int = FitConfig.epochs, batch_size: int = FitConfig.batch_size,
        validation_split: float = FitConfig.validation_split, validation_data=None, shuffle: bool = FitConfig.shuffle,
        callbacks=None, verbose: int = FitConfig.verbose, seed: int | None = FitConfig.seed,
        augment=FitConfig.augment, doctor=FitConfig.doctor, resume_from=None, checkpoint=None,
        allow_change=("epochs",)) -> History:
    """Train a compiled model on ``(x, y)`` with mini-batch gradient descent.

    The loop reads top to bottom (nanoGPT's train.py): validate everything, set up, then for
    each epoch :func:`_train_batch` (shuffle -> model.forward -> loss -> model.backward ->
    step -> metrics) and :func:`_end_epoch` (validate, callbacks, checkpoint).

    Args:
        model: a compiled ``Sequential`` (``model.compile(...)``).
        x: float inputs of the model's dtype, already scaled (e.g. pixels / 255).
        y: integer class labels in [0, K).
        epochs, batch_size, validation_split, shuffle, verbose, seed, augment, doctor:
            see ``FitConfig``.
        validation_data: ``(x_val, y_val)``, used instead of ``validation_split``.
        callbacks: list of ``cnnlab.training.callbacks.Callback``.
        resume_from: a checkpoint written by ``checkpoint=``: continue that run where it
            stopped (weights, optimizer, epoch, history, generator state; the seed is ignored).
            ``epochs`` is the total, counting the epochs already done.
        checkpoint: a file to write a checkpoint to at the end of every epoch (atomically;
            also on Ctrl-C, at the batch where training stopped). Its folder is held for the
            run (``cnnlab.utils.runlock``): a second fit or ``cnnlab train`` there is refused.
        allow_change: on resume, the settings that may differ from the run's (see
            ``cnnlab.training.resume_checks.CHANGEABLE``): ``"epochs"`` (allowed by default: a
            larger total trains further) and ``"lr"`` (the new learning rate, a schedule scaled to
            it). Any other difference (batch size, validation split, augmentation, seed, number of
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
    # ---------------------------------------------------------------- 1. validate inputs (no state changes)
    cfg = FitConfig(epochs=epochs, batch_size=batch_size, validation_split=validation_split, shuffle=shuffle,
                    verbose=verbose, seed=seed, augment=augment, doctor=doctor)
    run = _prepare(model, x, y, cfg, validation_data, callbacks, checkpoint, resume_from, allow_change)
    # one run per checkpoint folder: a second fit or cnnlab train writing there is refused at once
    hold = hold_run_folder(run.checkpoint.parent, "cnnlab fit") if run.checkpoint else contextlib.nullcontext()
    with hold:
        return _fit(run, model)


def _fit(run: "_Run", model):
    """Steps 2-4 of :func:`fit` on a checked run."""
    cfg = run.cfg
    # ---------------------------------------------------------------- 2. set up (state changes from here)
    _start(run)
    # ---------------------------------------------------------------- 3. epochs of batches
    try:
        with graceful_sigint(run.stop, cfg.verbose > 0), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for run.epoch in range(run.start_epoch, cfg.epochs):
                _shuffle(run)
                run.callbacks.on_epoch_begin(run.epoch, {})
                run.bar.start_epoch(run.epoch, run.first_batch)
                for run.batch in range(run.first_batch, run.steps):
                    _train_batch(run)
                # ---------------------------------------------------- 4. end of epoch
                if _end_epoch(run):
                    break
        if run.history.stop_reason is None:
            run.history.stop_reason = "completed"
    except Diverged as d:
        _report_divergence(model, run.optimizer, run.history, run.doc, d, run.checkpoint)
    except (StopRequested, KeyboardInterrupt):
        _handle_interrupt(run)
    finally:
        run.bar.close()
    run.history.diagnostics = list(_merge(run.history.diagnostics, run.doc.records))
    run.callbacks.on_train_end(dict(run.logs))
    return run.history


@dataclass
class _Run:
    """Everything one call of ``fit`` works with, checked, in one place."""

    model: object
    cfg: FitConfig
    optimizer: object
    loss_fn: object
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    callbacks: CallbackList
    doc: Doctor
    params: dict
    settings: dict  # what a checkpoint stores to compare on resume (``run_settings``)
    checkpoint: Path | None
    resumed: object = None
    augment_fn: object = None
    # set up by _start, then advanced by the loop
    rng: np.random.Generator | None = None
    history: History | None = None
    bar: Progress | None = None
    start_epoch: int = 0
    progress: dict | None = None  # where an interrupted epoch stopped (resuming)
    epoch: int = 0
    batch: int = 0
    first_batch: int = 0
    phase: str = "start"  # "forward", "step", "done", "epoch_end": what an interruption finds
    perm: np.ndarray | None = None
    sums: dict = field(default_factory=lambda: {"loss": 0.0, "correct": 0, "seen": 0})
    logs: dict = field(default_factory=dict)
    stop: dict = field(default_factory=lambda: {"stop": False})

    @property
    def steps(self) -> int:
        return self.params["steps"]

    def write_checkpoint(self, epochs_done: int, position: dict | None = None) -> None:
        save_checkpoint(self.checkpoint, self.model, self.optimizer, epochs_done, self.history, self.rng,
                        config=self.settings, callbacks=list(self.callbacks), progress=position)


def _prepare(model, x, y, cfg: FitConfig, validation_data, callbacks, checkpoint, resume_from, allow_change) -> _Run:
    """Check every argument and the data, split off the validation set: raises before any state changes."""
    cfg.validate()
    optimizer, loss_fn = require_compiled(model)
    x, y, n_classes = check_xy(model, x, y, "x", "y")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a pair (x_val, y_val).")
        x_val, y_val, _ = check_xy(model, validation_data[0], validation_data[1], "x_val", "y_val")
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
    augment_fn = make_augment(cfg.augment)
    callback_list = CallbackList(callbacks)
    metric_keys = ["loss", "accuracy"] + (["val_loss", "val_accuracy"] if x_val is not None else []) + ["lr"]
    if checkpoint is not None:
        checkpoint = check_checkpoint_path(checkpoint)
    check_batch_statistics(model, x_train.shape[1:], n_train, cfg.batch_size)
    steps = -(-n_train // cfg.batch_size)
    settings = run_settings(cfg, optimizer, callback_list, n_train, 0 if x_val is None else len(x_val))
    resumed = None
    if resume_from is not None:
        resumed = check_resume(resume_from, model, optimizer, n_train, cfg.epochs, steps=steps,
                               callbacks=list(callback_list), settings=settings, allow_change=allow_change)
    params = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "steps": steps, "samples": n_train,
              "metrics": metric_keys}
    callback_list.setup(model, params)
    callback_list.validate(params)
    doc = cfg.doctor if isinstance(cfg.doctor, Doctor) else Doctor(enabled=bool(cfg.doctor))
    doc.reset(n_classes)
    doc.check_model(model, loss_fn)
    doc.check_inputs(x_train)
    return _Run(model, cfg, optimizer, loss_fn, x_train, y_train, x_val, y_val, callback_list, doc, params,
                settings, checkpoint, resumed, augment_fn)


def _start(run: _Run) -> None:
    """A fresh run (generator from the seed) or a resumed one (weights, optimizer, generator,
    history and callbacks as the checkpoint left them)."""
    resumed = run.resumed
    if resumed is not None:
        run.model.load_state_dict(resumed.model.state_dict())
        run.optimizer.load_state_dict(resumed.optimizer_state)
        run.rng = resumed.make_rng()
        run.history = resumed.history
        run.history.stop_reason = run.history.stopped_at = None
        run.start_epoch, run.progress = int(resumed.epoch), resumed.progress
    else:
        run.rng, run.history = np.random.default_rng(run.cfg.seed), History()
    run.history.params = run.params
    runtime.release_freed_memory()  # what was freed before training (data loading) is not kept for it
    bind_rng(run.model, run.rng)
    run.model.stop_training = False
    run.callbacks.on_train_begin({})
    if resumed is not None:  # callbacks continue from their saved state (matched by position and class)
        for cb, entry in zip(run.callbacks, resumed.callback_states):
            if entry.get("class") == type(cb).__name__:
                cb.load_state_dict(entry["state"])
        if "lr" in resumed.changed:
            _apply_new_lr(run.optimizer, list(run.callbacks), run.settings["optimizer"]["lr"], resumed.config)
    run.bar = Progress(run.cfg.verbose, run.cfg.epochs, run.steps)
    run.epoch = run.start_epoch
    run.first_batch = run.batch = int(run.progress["batch"]) if run.progress else 0


def _shuffle(run: _Run) -> None:
    """This epoch's order of the samples (or, resuming inside an epoch, the saved order and sums)."""
    if run.progress is not None:
        run.perm, run.sums = run.progress["permutation"], dict(run.progress["sums"])
        run.first_batch, run.progress = int(run.progress["batch"]), None
    else:
        n = run.x_train.shape[0]
        run.perm = run.rng.permutation(n) if run.cfg.shuffle else np.arange(n)
        run.sums, run.first_batch = {"loss": 0.0, "correct": 0, "seen": 0}, 0


def _train_batch(run: _Run) -> None:
    """One gradient step: batch -> model.forward -> loss -> model.backward -> optimizer.step -> metrics."""
    model, loss_fn, b, bs = run.model, run.loss_fn, run.batch, run.cfg.batch_size
    run.phase = "forward"
    idx = run.perm[b * bs:(b + 1) * bs]
    xb, yb = run.x_train[idx], run.y_train[idx]
    if run.augment_fn is not None:
        xb = run.augment_fn(xb, run.rng)
    logits = model.forward(xb, training=True)
    loss = loss_fn.forward(logits, yb)
    if not math.isfinite(loss):
        raise Diverged(run.epoch, b, loss, run.doc.locate_nonfinite(model, loss_fn, xb, yb))
    run.optimizer.zero_grad()
    model.backward(loss_fn.backward(), need_input_grad=False)  # the input is data
    run.phase = "step"
    run.optimizer.step()
    run.phase = "done"
    n = len(yb)
    correct = int(np.count_nonzero(np.argmax(logits, axis=1) == yb))
    run.sums["loss"] += loss * n
    run.sums["correct"] += correct
    run.sums["seen"] += n
    run.doc.after_step(model, run.epoch, b, loss, xb)
    run.callbacks.on_batch_end(b, {"loss": loss, "accuracy": correct / n, "size": n})
    run.bar.batch(n, run.sums["loss"] / run.sums["seen"], run.sums["correct"] / run.sums["seen"])
    if run.stop["stop"]:
        raise StopRequested


def _end_epoch(run: _Run) -> bool:
    """Validate, record, call the callbacks, write the checkpoint; True when training should stop."""
    run.phase = "epoch_end"  # an interruption from here on keeps the previous checkpoint
    sums, epoch = run.sums, run.epoch
    logs = {"loss": sums["loss"] / sums["seen"], "accuracy": sums["correct"] / sums["seen"]}
    if run.x_val is not None:
        logs["val_loss"], logs["val_accuracy"] = evaluate(run.model, run.x_val, run.y_val, run.cfg.eval_batch_size)
    logs["lr"] = float(run.optimizer.lr)
    run.logs = logs
    run.bar.end_epoch(epoch, logs)
    run.doc.end_epoch(epoch, logs["loss"], logs["lr"], logs["accuracy"])
    run.history.append(epoch, logs)
    run.history.diagnostics = list(_merge(run.history.diagnostics, run.doc.records))
    run.callbacks.on_epoch_end(epoch, dict(logs))
    if run.checkpoint is not None:
        run.write_checkpoint(epoch + 1)
    if getattr(run.model, "stop_training", False):
        run.history.stop_reason = "early_stopping"
        return True
    return False


def run_settings(cfg: FitConfig, optimizer, callbacks, n_train: int, n_val: int) -> dict:
    """What a checkpoint stores to compare on resume: the fit settings, the numbers of samples,
    the optimizer's class and settings as compiled, and the classes of the callbacks that carry
    state into a resume (schedules, early stopping; a logger or a timer may come and go)."""
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


def _merge(existing: list, new: list):
    seen = {(d.kind, d.epoch, d.batch, d.message) for d in existing}
    yield from existing
    for d in new:
        if (d.kind, d.epoch, d.batch, d.message) not in seen:
            yield d


def _report_divergence(model, optimizer, history: History, doc: Doctor, d: Diverged, checkpoint) -> None:
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


def _handle_interrupt(run: _Run) -> None:
    history, epoch, checkpoint = run.history, run.epoch, run.checkpoint
    history.stop_reason = "interrupted"
    history.stopped_at = {"epoch": epoch + 1, "batch": run.batch + 1}  # the batch during or after which it came
    note = ""
    if checkpoint is not None:
        if run.phase == "done" and run.perm is not None:
            # a consistent point: batch b finished; the next run starts at batch b + 1
            run.write_checkpoint(epoch, {"batch": run.batch + 1, "permutation": run.perm, "sums": run.sums})
            history.last_good_checkpoint = str(checkpoint)
            note = f" Checkpoint saved to {checkpoint}; continue with fit(..., resume_from={str(checkpoint)!r})."
        elif Path(checkpoint).is_file():
            history.last_good_checkpoint = str(checkpoint)
            note = (f" The interruption came in the middle of a batch, so the checkpoint from the end of "
                    f"epoch {len(history.epoch)} ({checkpoint}) is kept.")
    if run.cfg.verbose:
        print(f"Training interrupted at epoch {epoch + 1}, batch {history.stopped_at['batch']}.{note}",
              file=sys.stderr)
