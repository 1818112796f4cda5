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
