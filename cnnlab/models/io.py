"""Saving and loading models without pickle: ``save_model`` / ``load_model``.

The file format and its limits (atomic writes, no pickle, bounded reads) are in
``cnnlab.models.archive``; this module adds the step that needs the model class: building
a ``Sequential`` from a file.
"""
from __future__ import annotations

from cnnlab.models.archive import (ALLOWED_DTYPES, FORMAT_NAME, FORMAT_VERSION, HEADER_KEY, MAX_ARRAY_BYTES,
                                   MAX_COMPRESSION_RATIO, MAX_HEADER_BYTES, MAX_MEMBERS, MAX_TOTAL_BYTES,
                                   ModelFileError, declared_weight_count, read_archive, save_model,
                                   write_archive)
from cnnlab.models.budget import check_compute_budget
from cnnlab.models.sequential import Sequential

__all__ = ["ALLOWED_DTYPES", "FORMAT_NAME", "FORMAT_VERSION", "HEADER_KEY", "MAX_ARRAY_BYTES", "MAX_COMPRESSION_RATIO",
           "MAX_HEADER_BYTES", "MAX_MEMBERS", "MAX_TOTAL_BYTES", "ModelFileError", "load_model", "read_archive",
           "save_model", "write_archive"]

#: a model file may declare this many more weights than it holds before load_model refuses it
_ALLOCATION_SLACK = 2**24


def load_model(path, *, return_header: bool = False):
    """Load a model saved by ``save_model`` / ``Sequential.save``; never executes code.

    Returns:
        the ``Sequential`` model, or ``(model, header, arrays)`` when ``return_header`` is true
        (arrays other than the model's own, e.g. optimizer state).

    Raises:
        ModelFileError: (a ValueError) for a missing, corrupted or incompatible file.
    """
    header, arrays = read_archive(path)
    config = header.get("model")
    dtype = header.get("dtype")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path} holds no model architecture.")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"{path} declares dtype {dtype!r}; expected 'float32' or 'float64'.")
    # Building the model allocates the weights its config declares; check that the file really
    # holds about that many values first, so a tiny file declaring Dense(65536, 65536) costs
    # nothing. Small mismatches are left to load_state_dict, whose message names the key.
    declared = declared_weight_count(config)
    held = sum(int(v.size) for k, v in arrays.items() if k.startswith("model/"))
    if declared > 2 * held + _ALLOCATION_SLACK:
        raise ModelFileError(
            f"{path}: its architecture declares at least {declared:,} weights but the file holds only "
            f"{held:,} model values; the file is corrupted or hostile."
        )
    try:
        model = Sequential.from_config(config)
        model.astype(dtype)
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{path}: the model in this file is inconsistent: {err}") from None
    # what running it would cost: a tiny file may declare a padding of 30,000
    try:
        check_compute_budget(model, what=f"the model in {path}")
    except ValueError as err:
        raise ModelFileError(str(err)) from None
    try:
        state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
        model.load_state_dict(state)
    except (ValueError, TypeError) as err:
        raise ModelFileError(f"{path}: the model in this file is inconsistent: {err}") from None
    if return_header:
        rest = {k: v for k, v in arrays.items() if not k.startswith("model/")}
        return model, header, rest
    return model
