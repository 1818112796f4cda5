"""The pieces every exercise is made of: graded cases, classic mistakes, the registry.

A :class:`Case` calls one learner function on fixed inputs and compares the result with
cnnlab's reference. Its ``variants`` hold the outputs of known *wrong* solutions, computed
from the reference; when the learner's output matches one, the grader names the mistake.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass
class Case:
    """One graded call: ``module.<func>(*args)`` must equal ``expected``.

    Attributes:
        label: what the case tests, e.g. ``"ties in a window"``.
        func: the learner's function name.
        args: positional arguments (copied before every call: learners may write into them).
        expected: the reference output: an array, a number, or a tuple of them.
        variants: mistake key -> the output a classic wrong solution gives on this case.
        call: optional ``call(module) -> output`` replacing ``func(*args)`` (property checks).
        names: names of the parts of a tuple output, e.g. ``("dx", "dw", "db")``.
    """

    label: str
    func: str
    args: tuple = ()
    expected: Any = None
    variants: dict = field(default_factory=dict)
    call: Callable | None = None
    names: tuple = ()

    def size(self) -> int:
        """Number of input values: the smallest failing case is the one to show."""
        return sum(int(np.size(a)) for a in self.args if isinstance(a, (np.ndarray, list, tuple)))


@dataclass
class Exercise:
    """An exercise: what to write, where it comes from, how it is graded.

    Attributes:
        name: the CLI name, e.g. ``"maxpool"``.
        title: one line.
        source: the tutorial and section it comes from.
        functions: the names the learner's file must define.
        skeleton: the file ``start`` writes (signatures, docstrings, TODOs, hint; no answer).
        cases: builds the graded cases (deterministic: fixed seeds).
        hints: mistake key -> the targeted hint printed when that mistake is detected.
        timeout: wall-clock seconds allowed for the whole check.
    """

    name: str
    title: str
    source: str
    functions: tuple
    skeleton: str
    cases: Callable[[], list]
    hints: dict
    timeout: float = 60.0


REGISTRY: dict[str, Exercise] = {}


def register(ex: Exercise) -> Exercise:
    if ex.name in REGISTRY:
        raise ValueError(f"exercise {ex.name!r} is registered twice")
    REGISTRY[ex.name] = ex
    return ex


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def distinct(shape, seed: int, dtype=np.float64) -> np.ndarray:
    """Values with no ties (a permutation scaled): keeps max-pool and ReLU off their kinks."""
    r = rng(seed)
    n = int(np.prod(shape))
    return ((r.permutation(n) - n / 2) / 4 + 0.125).reshape(shape).astype(dtype)


def header(name: str, title: str, source: str) -> str:
    """First lines of every skeleton: ``check`` reads the exercise name from them."""
    return (f'"""cnnlab exercise: {name}\n\n{title}\nFrom: {source}\n\n'
            f'Check your work with:  cnnlab exercise check THIS_FILE\n"""\n')
