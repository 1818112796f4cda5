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

import math
import sys
from pathlib import Path

import numpy as np

from cnnlab.training.callbacks import CallbackList
from cnnlab.training.checkpoints import check_resume, save_checkpoint
from cnnlab.training.compile import require_compiled
from cnnlab.training.config import FitConfig
from cnnlab.training.data import bind_rng, check_xy, make_augment
from cnnlab.training.doctor import Doctor
from cnnlab.training.inference import evaluate
from cnnlab.training.history import History
from cnnlab.training.progress import Diverged, Progress, StopRequested, graceful_sigint
from cnnlab.utils.files import check_writable_folder

__all__ = ["fit"]


def fit(model, x, y, epochs: int = 1, batch_size: int = 32, validation_split: float = 0.0, validation_data=None,
        shuffle: bool = True, callbacks=None, verbose: int = 1, seed: int | None = None, augment=None,
        doctor=True, resume_from=None, checkpoint=None) -> History:
    """Train a compiled model on ``(x, y)`` with mini-batch gradient descent.

    Long by design: the training loop reads top to bottom in labelled sections (nanoGPT's
    train.py); each section is a few lines calling the model, the loss and the optimizer.

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
            also on Ctrl-C, at the batch where training stopped).

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
    steps = -(-n_train // cfg.batch_size)
    augment_fn = make_augment(cfg.augment)
    callback_list = CallbackList(callbacks)
    metric_keys = ["loss", "accuracy"] + (["val_loss", "val_accuracy"] if x_val is not None else []) + ["lr"]
    if checkpoint is not None:
        checkpoint = check_writable_folder(checkpoint, "cannot write the checkpoint")
    resumed = check_resume(resume_from, model, optimizer, n_train, cfg.epochs) if resume_from is not None else None
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
    bind_rng(model, rng)
    model.stop_training = False
    callback_list.on_train_begin({})
    if resumed is not None:  # callbacks continue from their saved state (matched by position and class)
        for cb, entry in zip(callback_list, resumed.callback_states):
            if entry.get("class") == type(cb).__name__:
                cb.load_state_dict(entry["state"])
    bar = Progress(cfg.verbose, cfg.epochs, steps)
    stop = {"stop": False}
    config_json = cfg.to_json()
    logs: dict = {}
    first_batch = int(progress["batch"]) if progress else 0

    def write_checkpoint(epochs_done: int, position: dict | None = None) -> None:
        save_checkpoint(checkpoint, model, optimizer, epochs_done, history, rng, config=config_json,
                        callbacks=list(callback_list), progress=position)

    epoch = start_epoch
    b = first_batch
    phase = "start"
    perm = None
    sums = {"loss": 0.0, "correct": 0, "seen": 0}
    try:
        with graceful_sigint(stop, cfg.verbose > 0), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
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
                    logits = model.forward(xb, training=True)
                    # ------------------------------------------------ loss
                    loss = loss_fn.forward(logits, yb)
                    if not math.isfinite(loss):
                        raise Diverged(epoch, b, loss, doc.locate_nonfinite(model, loss_fn, xb, yb))
                    # ------------------------------------------------ backward
                    optimizer.zero_grad()
                    model.backward(loss_fn.backward(), need_input_grad=False)  # the input is data
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
                        raise StopRequested
                # ---------------------------------------------------- end of epoch: validate
                phase = "epoch_end"  # an interruption from here on keeps the previous checkpoint
                logs = {"loss": sums["loss"] / sums["seen"], "accuracy": sums["correct"] / sums["seen"]}
                if x_val is not None:
                    logs["val_loss"], logs["val_accuracy"] = evaluate(model, x_val, y_val, cfg.eval_batch_size)
                logs["lr"] = float(optimizer.lr)
                bar.end_epoch(epoch, logs)
                doc.end_epoch(epoch, logs["loss"], logs["lr"])
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
    except Diverged as d:
        _report_divergence(model, optimizer, history, doc, d, checkpoint)
    except (StopRequested, KeyboardInterrupt):
        _handle_interrupt(history, epoch, b, phase, perm, sums, checkpoint, write_checkpoint, cfg.verbose)
    finally:
        bar.close()
    history.diagnostics = list(_merge(history.diagnostics, doc.records))
    callback_list.on_train_end(dict(logs))
    return history


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
