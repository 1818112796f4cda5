"""Checks a checkpoint must pass before ``fit(resume_from=...)`` changes anything.

``fit`` restores weights, optimizer, generator, history and callbacks one after another; if
any of them failed half-way, the model would already hold the checkpoint's weights. So the
WHOLE checkpoint is checked first, against the run about to continue:

* :func:`check_progress` - the mid-epoch position: a permutation of exactly the training
  indices (integers, each once), a batch index inside the epoch, finite non-negative sums;
* :func:`check_epoch_and_history` - completed epochs a non-negative int, a history whose
  curves are lists of numbers, one per completed epoch;
* :func:`check_callback_states` - every saved callback state loads into a *copy* of the
  matching callback;
* :func:`compare_settings` - the fit settings the checkpoint stores equal this call's,
  except those the caller explicitly allows to change (:data:`CHANGEABLE`).

Each raises ``ModelFileError`` (a ValueError) naming the checkpoint and what is wrong.
"""
from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np

from cnnlab.models.io import ModelFileError

#: settings that may differ on resume (``fit(allow_change=...)``, ``cnnlab train --allow-change``), and why
CHANGEABLE = {
    "epochs": "the total to train for: raising it continues a finished run (fit allows this by default)",
    "lr": "the learning rate from here on (a schedule keeps its shape, scaled to the new rate)",
}
#: settings that never change the numbers of a run, so they are not compared
_NOT_COMPARED = ("verbose", "doctor", "eval_batch_size")


def _is_int(v) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_epoch_and_history(path, epoch, history_raw) -> None:
    """``epoch``: completed epochs, an int >= 0; ``history_raw``: the stored ``History.to_dict()``."""
    if not _is_int(epoch) or epoch < 0:
        raise ModelFileError(f"{path}: its completed-epoch count must be an int >= 0; it holds {_short(epoch)}.")
    if not isinstance(history_raw, dict):
        raise ModelFileError(f"{path}: its history must be a JSON object; it holds {type(history_raw).__name__}.")
    curves = history_raw.get("history", {})
    if not isinstance(curves, dict):
        raise ModelFileError(f"{path}: its history curves must be a JSON object; it holds {type(curves).__name__}.")
    for key, values in curves.items():
        if not isinstance(values, list) or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
            raise ModelFileError(f"{path}: history curve {_short(key)} must be a list of numbers; it holds "
                                 f"{_short(values)}.")
        if len(values) != epoch:
            raise ModelFileError(f"{path}: history curve {_short(key)} has {len(values)} values for {epoch} "
                                 f"completed epochs.")
    epochs = history_raw.get("epoch", [])
    if not isinstance(epochs, list) or epochs != list(range(len(epochs))) or len(epochs) != epoch:
        raise ModelFileError(f"{path}: its history's epoch list must be [0, ..., {epoch - 1}]; it holds "
                             f"{_short(epochs)}.")
    for key in ("diagnostics",):
        entries = history_raw.get(key, [])
        if not isinstance(entries, list) or not all(isinstance(d, dict) and isinstance(d.get("kind"), str)
                                                    and isinstance(d.get("message"), str) for d in entries):
            raise ModelFileError(f"{path}: its history's {key} must be a list of records with 'kind' and 'message'.")
    if not isinstance(history_raw.get("params", {}), dict):
        raise ModelFileError(f"{path}: its history's params must be a JSON object.")


def check_progress(path, progress, n_train: int, steps: int) -> None:
    """A mid-epoch position ``{"batch", "permutation", "sums"}`` for ``n_train`` samples in
    ``steps`` batches."""
    if progress is None:
        return
    if not isinstance(progress, dict):
        raise ModelFileError(f"{path}: its mid-epoch position must be a JSON object; it holds "
                             f"{type(progress).__name__}.")
    perm = progress.get("permutation")
    if not isinstance(perm, np.ndarray) or perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        got = f"dtype {perm.dtype}, shape {perm.shape}" if isinstance(perm, np.ndarray) else type(perm).__name__
        raise ModelFileError(f"{path}: its stored permutation must be a 1-D integer array; it holds {got}.")
    if len(perm) != n_train:
        raise ValueError(f"{path} was interrupted inside an epoch over {len(perm)} training samples; this call has "
                         f"{n_train}. Resume with the same data.")
    seen = np.zeros(n_train, dtype=bool)
    valid = (perm >= 0) & (perm < n_train)
    seen[perm[valid]] = True
    if not valid.all() or not seen.all():
        raise ModelFileError(f"{path}: its stored order of the {n_train} training samples is not a permutation of "
                             f"0..{n_train - 1} (values out of range or repeated).")
    batch = progress.get("batch")
    if not _is_int(batch) or not 0 <= batch < steps:
        raise ModelFileError(f"{path}: its mid-epoch batch index must be an int in [0, {steps - 1}] for {steps} "
                             f"batches per epoch; it holds {_short(batch)}.")
    sums = progress.get("sums")
    if (not isinstance(sums, dict) or set(sums) != {"loss", "correct", "seen"} or not _is_number(sums["loss"])
            or not _is_int(sums["correct"]) or not _is_int(sums["seen"])
            or not 0 <= sums["correct"] <= sums["seen"] <= n_train or sums["loss"] < 0):
        raise ModelFileError(f"{path}: its mid-epoch sums must be {{'loss': number >= 0, 'correct': int, 'seen': "
                             f"int}} with 0 <= correct <= seen <= {n_train}; it holds {_short(sums)}.")


def check_callback_states(path, callbacks, entries) -> None:
    """Each saved ``{"class", "state"}`` entry must load into a copy of the callback at its position."""
    if not isinstance(entries, list):
        raise ModelFileError(f"{path}: its callbacks entry must be a list; it holds {type(entries).__name__}.")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("class"), str) \
                or not isinstance(entry.get("state", {}), dict):
            raise ModelFileError(f"{path}: callback entry {i} must be {{'class': name, 'state': {{...}}}}; it holds "
                                 f"{_short(entry)}.")
    for i, (cb, entry) in enumerate(zip(callbacks, entries)):
        if entry["class"] != type(cb).__name__:
            continue
        probe = copy.copy(cb)  # a shallow copy: load_state_dict rebinds attributes, the original is untouched
        try:
            probe.load_state_dict(entry.get("state", {}))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as err:
            raise ModelFileError(f"{path}: the saved state of callback {i} ({entry['class']}) does not load: "
                                 f"{type(err).__name__}: {_short(str(err), 200)}") from None
        lr0 = getattr(probe, "initial_lr", None)
        if hasattr(cb, "initial_lr") and not (_is_number(lr0) and lr0 > 0):  # a schedule's base rate
            raise ModelFileError(f"{path}: callback {i} ({entry['class']}) holds initial_lr {_short(lr0)}; expected "
                                 f"a number > 0.")


def compare_settings(path, saved, current: dict, allow_change=()) -> dict:
    """Compare the fit settings a checkpoint stores with this call's.

    Args:
        saved: the checkpoint's settings (``FitConfig.to_json()`` plus ``samples``,
            ``optimizer``, ``callbacks``), or None for a checkpoint without them.
        current: this call's, in the same form.
        allow_change: names from :data:`CHANGEABLE` that may differ.

    Returns:
        the names in ``allow_change`` that do differ.

    Raises:
        ValueError: unknown names in ``allow_change``, or settings that differ, all listed
            ("batch_size: 32 in the checkpoint, 64 now"), with the fix.
    """
    unknown = sorted(set(allow_change) - set(CHANGEABLE))
    if unknown:
        raise ValueError(f"allow_change may name only {sorted(CHANGEABLE)}; received {unknown}. The others change "
                         f"what the resumed run computes; start a new run instead.")
    if saved is None:
        return []
    if not isinstance(saved, dict):
        raise ModelFileError(f"{path}: its fit settings must be a JSON object; it holds {type(saved).__name__}.")
    flat_saved, flat_now = _flatten(saved), _flatten(current)
    diffs, changed = [], []
    for key in sorted(flat_now):
        if key in _NOT_COMPARED or key not in flat_saved:  # older checkpoints lack some settings
            continue
        name = "lr" if key == "optimizer.lr" else key
        if key == "seed" and flat_now[key] is None:  # fit(seed=None) on resume: the run's own generator
            continue
        if flat_saved[key] != flat_now[key]:
            if name in allow_change:
                changed.append(name)
            else:
                diffs.append(f"{key}: {_short(flat_saved[key])} in the checkpoint, {_short(flat_now[key])} now")
    if diffs:
        allowed = ", ".join(f"{k} ({why})" for k, why in CHANGEABLE.items())
        raise ValueError(f"{path} was written by a run with other settings; resuming would silently change the run: "
                         f"{'; '.join(diffs)}. Pass the same settings as the run, or start a new run. Only these "
                         f"may change, when allowed explicitly: {allowed}.")
    return changed


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
