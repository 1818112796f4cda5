"""Learning-rate schedules: callbacks that set the optimizer's ``lr`` at the start of each epoch.

Example:
    >>> schedule = StepDecay(step_size=2, gamma=0.5)
    >>> [schedule.lr_at(epoch, 0.1) for epoch in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    >>> [round(lr, 4) for lr in (CosineDecay(4).lr_at(e, 0.1) for e in range(4))]
    [0.1, 0.0854, 0.05, 0.0146]
"""
from __future__ import annotations

import math
from typing import Callable

from cnnlab.training.callbacks import Callback
from cnnlab.utils.validation import check_positive_int, check_real

__all__ = ["LearningRateScheduler", "StepDecay", "CosineDecay"]


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
