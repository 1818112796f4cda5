"""argparse value types shared by the command-line modules: each names the rule it enforces
and what was received, so a bad option gives a one-line error."""
from __future__ import annotations

import argparse
import math


def _parse(text: str, kind, rule: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {rule}; received {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _parse(text, int, "an integer >= 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1; received {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0."""
    value = _parse(text, int, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; received {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _parse(text, float, "a number > 0")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0; received {text!r}")
    return value


def fraction(text: str) -> float:
    """A number in [0, 1)."""
    value = _parse(text, float, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1); received {text!r}")
    return value


def bounded_int(low: int, high: int, why: str):
    """An argparse type: an integer in [low, high]; ``why`` says where the upper bound comes from.

    Every count a user types is bounded by what makes sense (a thread per core, at most the
    images MNIST has): ``--threads 1000000000`` is an error at once, not 23 GB later.
    """
    def parse(text: str) -> int:
        value = _parse(text, int, f"an integer in [{low}, {high}]")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer in [{low}, {high}] ({why}); received {text!r}")
        return value

    parse.__name__ = f"int in [{low}, {high}]"
    return parse


def thread_count(text: str) -> int:
    """A number of threads: 1 to the machine's cores (more only makes threads wait on each other)."""
    import os

    cores = os.cpu_count() or 1
    return bounded_int(1, cores, f"this machine has {cores} cores")(text)
