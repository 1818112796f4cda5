"""Checkpoints: save a run's whole state and resume it exactly; ``restore`` a model to train further.

A checkpoint is a cnnlab model file (``cnnlab.models.io``: an npz archive with a JSON header, written
atomically, loaded without running code) whose header and extra arrays also hold the
optimizer state, the completed epochs, the ``History``, the random generator's exact state,
the fit settings, the callbacks' state and, for a run interrupted inside an epoch, its
position (batch, permutation, running sums). ``fit(checkpoint=...)`` writes one after every
epoch; ``fit(resume_from=...)`` checks it against the model and run (``check_resume``) before
anything changes, then continues with the same bits as an uninterrupted run.

Example:
    >>> import tempfile, os
    >>> from cnnlab.models.zoo import ox_cnn
    >>> model = ox_cnn(seed=0); _ = model.compile("sgd", lr=0.1, momentum=0.9)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> _ = save_checkpoint(path, model, model.optimizer, 0, History(), np.random.default_rng(0))
    >>> state = load_checkpoint(path)
    >>> state.epoch, state.optimizer_state["name"], restore(path).optimizer.momentum
    (0, 'sgd', 0.9)
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cnnlab.training.compile import compile_model
from cnnlab.training.history import History
from cnnlab.training.optim import OPTIMIZERS
from cnnlab.training.resume_checks import (check_callback_states, check_epoch_and_history, check_progress,
                                          compare_settings)
from cnnlab.models.io import ModelFileError, load_model, save_model
from cnnlab.utils.files import check_writable_folder


def _split_tree(obj, prefix: str, arrays: dict):
    """JSON-able copy of a nested dict/list whose array leaves move into ``arrays[prefix/...]``."""
    if isinstance(obj, np.ndarray):
        arrays[prefix] = np.ascontiguousarray(obj)
        return {"__array__": prefix}
    if isinstance(obj, dict):
        return {str(k): _split_tree(v, f"{prefix}/{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split_tree(v, f"{prefix}/{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint; only numbers, "
                    f"strings, lists, dicts and NumPy arrays.")


def _join_tree(obj, arrays: dict, path):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            key = obj["__array__"]
            if key not in arrays:
                raise ModelFileError(f"{path} is missing the array {key!r} its header refers to.")
            return arrays[key]
        return {k: _join_tree(v, arrays, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_tree(v, arrays, path) for v in obj]
    return obj


def save_training_state(path, model, optimizer=None, *, epoch: int | None = None, history: History | None = None,
                        rng: np.random.Generator | None = None, config: dict | None = None, callbacks=None,
                        progress: dict | None = None) -> Path:
    """Save a model file that also holds what is needed to keep training (atomic write).

    The result loads with ``cnnlab.load_model`` (weights only), with ``restore`` (a compiled
    model with its optimizer state) and, when ``rng`` is given, with ``load_checkpoint``
    / ``fit(resume_from=...)``.

    Args:
        path: destination file.
        model: the model.
        optimizer: its optimizer (state arrays go under ``optimizer/...``), or None.
        epoch: completed epochs.
        history: the run's ``History``.
        rng: the run's Generator; its exact ``bit_generator.state`` is stored.
        config: ``FitConfig.to_json()`` of the run.
        callbacks: callbacks whose ``state_dict()`` to store.
        progress: mid-epoch position ``{"batch", "permutation", "sums"}`` for an interrupted epoch.
    """
    arrays: dict[str, np.ndarray] = {}
    header: dict = {"kind": "checkpoint" if rng is not None else "training_state",
                    "epoch": epoch, "loss": getattr(getattr(model, "loss_fn", None), "name", None),
                    "metrics": list(getattr(model, "metrics", []) or [])}
    if optimizer is not None:
        header["optimizer"] = {"class": type(optimizer).__name__, "name": getattr(optimizer, "name", ""),
                               "state": _split_tree(optimizer.state_dict(), "optimizer", arrays)}
    if history is not None:
        header["history"] = history.to_dict()
    if rng is not None:
        header["rng"] = rng.bit_generator.state
    if config is not None:
        header["config"] = config
    if callbacks is not None:
        header["callbacks"] = [
            {"class": type(cb).__name__, "state": _split_tree(cb.state_dict(), f"callbacks/{i}", arrays)}
            for i, cb in enumerate(callbacks)
        ]
    if progress is not None:
        header["progress"] = {"batch": int(progress["batch"]), "sums": progress["sums"]}
        arrays["progress/permutation"] = np.asarray(progress["permutation"], dtype=np.int64)
    return save_model(model, path, extra=header, extra_arrays=arrays)


def save_checkpoint(path, model, optimizer, epoch: int, history: History, rng: np.random.Generator, *,
                    config: dict | None = None, callbacks=None, progress: dict | None = None) -> Path:
    """Everything needed to resume a ``fit`` exactly: weights and buffers (``model/<key>``),
    optimizer state (``optimizer/<key>``), completed epochs, history, the generator's exact
    state, the fit config and the callbacks' state. Written atomically."""
    return save_training_state(path, model, optimizer, epoch=epoch, history=history, rng=rng,
                               config=config, callbacks=callbacks, progress=progress)


@dataclass
class TrainingState:
    """A loaded checkpoint (see ``load_checkpoint``)."""

    path: str
    model: object
    header: dict
    epoch: int | None
    history: History | None
    rng_state: dict | None
    config: dict | None
    optimizer_state: dict | None
    callback_states: list = field(default_factory=list)
    progress: dict | None = None
    changed: list = field(default_factory=list)  # settings allowed to differ on resume that do

    def make_rng(self) -> np.random.Generator:
        """A Generator in exactly the saved state."""
        if self.rng_state is None:
            raise ValueError(f"{self.path} holds no random-generator state.")
        rng = np.random.default_rng()
        rng.bit_generator.state = self.rng_state
        return rng


def load_checkpoint(path) -> TrainingState:
    """Read a file written by ``save_checkpoint`` / ``save_training_state`` (never runs code).

    Raises:
        ModelFileError: missing, corrupted or not a cnnlab model file.
    """
    model, header, rest = load_model(path, return_header=True)
    opt = header.get("optimizer")
    opt_state = _join_tree(opt["state"], rest, path) if isinstance(opt, dict) and "state" in opt else None
    entries = header.get("callbacks", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ModelFileError(f"{path}: its callbacks entry must be a list of {{'class', 'state'}} objects.")
    cbs = [dict(entry, state=_join_tree(entry.get("state", {}), rest, path)) for entry in entries]
    progress = header.get("progress")
    if progress is not None:
        if not isinstance(progress, dict):
            raise ModelFileError(f"{path}: its mid-epoch position must be a JSON object.")
        if "progress/permutation" not in rest:
            raise ModelFileError(f"{path} has a mid-epoch position but no permutation array.")
        progress = dict(progress, permutation=rest["progress/permutation"])
    history = None
    if isinstance(header.get("history"), dict):
        try:
            history = History.from_dict(header["history"])
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise ModelFileError(f"{path} holds an invalid history: {type(err).__name__}: {str(err)[:200]}") from None
    rng_state = header.get("rng")
    if rng_state is not None:
        try:
            np.random.default_rng().bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError) as err:
            raise ModelFileError(f"{path} holds an invalid random-generator state: {str(err)[:200]}") from None
    return TrainingState(str(path), model, header, header.get("epoch"), history, rng_state, header.get("config"),
                         opt_state, cbs, progress)


def restore(path):
    """Load a model file with its optimizer, ready to ``fit`` further (or to ``evaluate``).

    Returns:
        a compiled ``Sequential``: weights, ``model.optimizer`` with its saved state (moments,
        step count, learning rate), ``model.loss_fn`` and ``model.metrics``. A file without
        optimizer state gives a model compiled with the defaults.
    """

    state = load_checkpoint(path)
    model = state.model
    opt_state = state.optimizer_state
    loss = state.header.get("loss") or "cross_entropy"
    metrics = state.header.get("metrics") or ["accuracy"]
    if opt_state is None:
        return compile_model(model, "adam", loss, metrics)
    name = opt_state.get("name") if isinstance(opt_state, dict) else None
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ModelFileError(f"{path} holds the state of an unknown optimizer {str(name)[:60]!r}.")
    try:
        opt = OPTIMIZERS[name](None, **opt_state["config"])
        compile_model(model, opt, loss, metrics)
        opt.load_state_dict(opt_state)
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"{path}: the optimizer state in this file is inconsistent: {err}") from None
    return model


def architecture(config: dict) -> list:
    """The layers' classes and settings, without names, in JSON form (for comparing models)."""
    return json.loads(json.dumps([(e["class"], e["config"]) for e in config.get("layers", [])]))


def check_checkpoint_path(checkpoint) -> Path:
    """The checkpoint file must be writable: its folder exists and is writable, and the path
    is not a folder (found before the first epoch, not after it with a temp file's name)."""
    path = Path(checkpoint)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write the checkpoint {path}: it is a folder; pass a file name such as "
                                f"{path / 'checkpoint.npz'}.")
    return check_writable_folder(path, "cannot write the checkpoint")


def check_resume(path, model, optimizer, n_train: int, epochs: int, *, steps: int | None = None, callbacks=(),
                  settings: dict | None = None, allow_change=("epochs",)) -> TrainingState:
    """Load and check a WHOLE checkpoint against this model and run; changes nothing.

    Checks the architecture, the optimizer state (on a throwaway twin), the completed epochs
    and history, the mid-epoch position (a true permutation of ``n_train`` indices, a batch
    in ``[0, steps)``), every callback state (on copies) and the fit ``settings`` (see
    ``cnnlab.training.resume_checks``). Sets ``state.changed`` to the allowed settings that differ.
    """
    state = load_checkpoint(path)
    if state.rng_state is None or state.epoch is None or state.history is None:
        raise ValueError(f"{path} is a model file without the training loop's state (epoch, history, random "
                         f"generator); resume from the checkpoint file that fit(checkpoint=...) writes, or load "
                         f"it with cnnlab.checkpoints.restore and call fit again.")
    if architecture(state.model.get_config()) != architecture(model.get_config()) or state.model.dtype != model.dtype:
        raise ValueError(f"{path} was written for a different model ({state.model.name}, "
                         f"{state.model.num_parameters():,} parameters, {state.model.dtype}); this model is "
                         f"{model.name} with {model.num_parameters():,} parameters, {model.dtype}.")
    if state.optimizer_state is None:
        raise ValueError(f"{path} holds no optimizer state; it cannot resume a run exactly.")
    probe = type(optimizer)(None, **optimizer.get_config())  # check the state on a throwaway twin
    probe.set_parameters(model.parameters())
    try:
        probe.load_state_dict(state.optimizer_state)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: its optimizer state does not fit this model's {type(optimizer).__name__}: "
                         f"{str(err)[:300]} Compile the model with the optimizer the run used.") from None
    check_epoch_and_history(path, state.epoch, state.header.get("history"))
    done = int(state.epoch)
    if done >= epochs:
        raise ValueError(f"{path} has already completed {done} epochs and epochs={epochs}; pass a larger "
                         f"epochs to train further.")
    steps = n_train if steps is None else steps  # unknown: at most one batch per sample
    check_progress(path, state.progress, n_train, steps)
    check_callback_states(path, list(callbacks), state.callback_states)
    state.changed = compare_settings(path, state.config, settings, allow_change) if settings is not None else []
    return state
