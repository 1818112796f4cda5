"""Exercises from the tutorials, with skeletons and an auto-grader.

Each exercise says which tutorial section it comes from. ``start`` writes a skeleton
(signatures, docstrings with shapes and the rule, TODOs, the tutorial's hint; never the
answer); ``check`` grades a file in a separate, time- and memory-limited process against
cnnlab's reference ops and names the classic mistake it recognizes.

Example:
    >>> from cnnlab import exercises
    >>> "maxpool" in exercises.names()
    True
"""
from __future__ import annotations

from pathlib import Path

from cnnlab.exercises.catalog import get, names
from cnnlab.exercises.grader import CheckResult, check

__all__ = ["CheckResult", "check", "describe", "get", "names", "start"]


def describe() -> list[tuple[str, str, str]]:
    """``(name, title, source)`` for every exercise, in teaching order."""
    return [(n, get(n).title, get(n).source) for n in names()]


def start(name: str, folder=".", *, overwrite: bool = False) -> Path:
    """Write the skeleton of exercise ``name`` to ``folder/<name>.py`` and return its path.

    Raises:
        ValueError: unknown exercise.
        FileExistsError: the file exists (your work is never overwritten unless ``overwrite``).
    """
    ex = get(name)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists already; check it with: cnnlab exercise check {path}")
    path.write_text(ex.skeleton, encoding="utf-8")
    return path
