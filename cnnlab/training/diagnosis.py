"""What the training doctor reports: its finding (``Diagnosis``, one of ``KINDS``), the warning
class it is raised as, and a context manager that prints those warnings as clean lines.

The checks that produce them are in ``cnnlab.training.doctor``.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, dataclass

KINDS = ("double_softmax", "unscaled_inputs", "loss_stuck", "exploding_loss", "non_finite", "exploding_gradients",
         "vanishing_gradients", "dead_relu", "loss_rising")


class DoctorWarning(UserWarning):
    """A problem the training doctor found in a run (see ``cnnlab.training.doctor``)."""


@contextlib.contextmanager
def warnings_as_lines(write):
    """Within the block, show each ``DoctorWarning`` as one clean line through ``write(text)``
    (e.g. ``tqdm.write``, which prints between progress-bar updates) instead of Python's
    ``path:line: DoctorWarning: ...`` plus the source line; other warnings are shown as before.
    They stay warnings: filters, ``catch_warnings`` and ``pytest.warns`` outside still apply."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DoctorWarning):
            write(str(message))
        elif previous is getattr(warnings, "_showwarning_orig", None):  # what warnings does when unpatched:
            warnings._showwarnmsg_impl(  # noqa: SLF001  (keeps catch_warnings(record=True) recording)
                warnings.WarningMessage(message, category, filename, lineno, file, line))
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


@dataclass(frozen=True)
class Diagnosis:
    """One finding of the doctor.

    Attributes:
        kind: one of ``KINDS``.
        message: the plain-words description with the fix.
        epoch: epoch (from 1) when it was found, or None for checks made before training.
        batch: batch within the epoch (from 1), or None.
        details: numbers behind the finding (JSON-able).
    """

    kind: str
    message: str
    epoch: int | None = None
    batch: int | None = None
    details: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Diagnosis":
        return cls(d["kind"], d["message"], d.get("epoch"), d.get("batch"), d.get("details"))
