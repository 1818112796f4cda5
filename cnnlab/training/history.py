"""``History``: what ``fit`` returns, and what a checkpoint stores of a run's progress.

Example:
    >>> h = History()
    >>> h.append(0, {"loss": 0.5, "accuracy": 0.875})
    >>> h
    History(epochs=1, stop_reason=None, last={'loss': 0.5, 'accuracy': 0.875})
    >>> History.from_dict(h.to_dict()).history
    {'loss': [0.5], 'accuracy': [0.875]}
"""
from __future__ import annotations

from cnnlab.training.diagnosis import Diagnosis


class History:
    """What ``fit`` returns: per-epoch numbers, diagnoses and how the run ended.

    Attributes:
        history: ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...],
            "lr": [...]}``, one value per completed epoch (validation keys only with validation data).
        epoch: completed epochs, counted from 0 (Keras' convention).
        diagnostics: ``Diagnosis`` records from the training doctor (``cnnlab.training.doctor``).
        stop_reason: ``"completed"``, ``"early_stopping"``, ``"diverged"`` or ``"interrupted"``.
        stopped_at: ``{"epoch": e, "batch": b}`` (from 1) where a divergence or interruption
            happened, else None.
        last_good_checkpoint: the checkpoint file a diverged or interrupted run leaves to
            resume from, or None.
        params: the settings of the run (epochs, batch_size, steps, samples, metrics).
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.diagnostics: list[Diagnosis] = []
        self.stop_reason: str | None = None
        self.stopped_at: dict | None = None
        self.last_good_checkpoint: str | None = None
        self.params: dict = {}

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict:
        """JSON-serializable form (used by checkpoints and ``cnnlab train``'s history.json)."""
        return {"history": self.history, "epoch": self.epoch,
                "diagnostics": [d.to_dict() for d in self.diagnostics], "stop_reason": self.stop_reason,
                "stopped_at": self.stopped_at, "last_good_checkpoint": self.last_good_checkpoint,
                "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        h = cls()
        h.history = {k: [float(v) for v in vals] for k, vals in d.get("history", {}).items()}
        h.epoch = [int(e) for e in d.get("epoch", [])]
        h.diagnostics = [Diagnosis.from_dict(r) for r in d.get("diagnostics", [])]
        h.stop_reason = d.get("stop_reason")
        h.stopped_at = d.get("stopped_at")
        h.last_good_checkpoint = d.get("last_good_checkpoint")
        h.params = dict(d.get("params", {}))
        return h

    def __repr__(self) -> str:
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, stop_reason={self.stop_reason!r}, last={last})"
