"""``FitConfig``: every setting of ``fit`` that has a default, in one place."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from cnnlab.training.doctor import Doctor
from cnnlab.utils.validation import check_positive_int, check_real

__all__ = ["FitConfig"]


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
        doctor: True, False, or a configured ``cnnlab.training.doctor.Doctor``.
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
