"""``check``: grade a learner's file in a separate, limited process and report.

The learner's code never runs in the caller's process: a child Python imports it under a
memory limit (RLIMIT_AS) and a CPU-time limit (RLIMIT_CPU), and the parent kills it after a
wall-clock timeout. An infinite loop or a huge allocation ends in a one-line message.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cnnlab.exercises import catalog

DEFAULT_MEMORY_MB = 2048
_HEADER = re.compile(r"cnnlab exercise:\s*([A-Za-z0-9_]+)")


@dataclass
class CheckResult:
    """What ``check`` found.

    Attributes:
        exercise: the exercise name.
        path: the file checked.
        cases: one dict per graded case: label, passed, message, max_error, hint (a key),
            and for failures the input, expected and got values (small arrays as lists).
        error: why grading could not run (import error, timeout, memory), else None.
        hints: mistake key -> hint text, for the hints that fired.
    """

    exercise: str
    path: str
    cases: list = field(default_factory=list)
    error: str | None = None
    hints: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.cases) and all(c["passed"] for c in self.cases)

    @property
    def first_failure(self) -> dict | None:
        """The failing case with the smallest input (the easiest to reason about)."""
        failed = [c for c in self.cases if not c["passed"]]
        return min(failed, key=lambda c: c.get("size", 0)) if failed else None

    def to_json(self) -> dict:
        return {"exercise": self.exercise, "path": self.path, "passed": self.passed, "error": self.error,
                "cases": self.cases, "hints": self.hints}

    def report(self) -> str:
        """Human-readable report: each case, then details of the smallest failure."""
        lines = [f"exercise {self.exercise}: {self.path}"]
        if self.error:
            return "\n".join(lines + [f"ERROR: {self.error}"])
        for c in self.cases:
            lines.append(f"  [{'pass' if c['passed'] else 'FAIL'}] {c['label']}"
                         + ("" if c["passed"] else f": {c['message']}"))
        f = self.first_failure
        if f is not None:
            lines.append("")
            lines.append(f"Smallest failing case: {f['label']}")
            if "input" in f:
                lines.append(f"  input:    {_fmt(f['input'])}")
                part = f" {f['part']}" if f.get("part") else ""
                lines.append(f"  expected{part}: {_fmt(f['expected'])}")
                lines.append(f"  got{part}:      {_fmt(f['got'])}")
            if f.get("max_error") is not None:
                lines.append(f"  max error: {f['max_error']:.3g}")
            if f.get("hint"):
                lines.append(f"  Hint: {self.hints[f['hint']]}")
        n_ok = sum(c["passed"] for c in self.cases)
        lines.append(f"{n_ok}/{len(self.cases)} cases passed" + (": well done!" if self.passed else ""))
        return "\n".join(lines)


def _fmt(value, limit=400) -> str:
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def exercise_of(path) -> str:
    """The exercise name from the file's header line ``cnnlab exercise: NAME``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no exercise file at {path}")
    with open(p, encoding="utf-8", errors="replace") as f:
        head = f.read(2000)
    m = _HEADER.search(head)
    if m is None:
        raise ValueError(f"{path} has no 'cnnlab exercise: NAME' line near its top; start from a skeleton "
                         f"(cnnlab exercise start NAME) or pass the name: check(path, name=...)")
    return m.group(1)


def _limits(memory_mb: int, cpu_s: int):
    def apply():  # runs in the child between fork and exec
        import resource

        os.setsid()  # its own process group: the timeout kills grandchildren too
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 5))
    return apply


def check(path, *, name: str | None = None, timeout: float | None = None,
          memory_mb: int = DEFAULT_MEMORY_MB) -> CheckResult:
    """Grade the learner's file ``path``; never raises for the learner's mistakes.

    Args:
        path: a file written from ``start`` (or any file defining the exercise's functions).
        name: the exercise; default: read from the file's header.
        timeout: wall-clock seconds (default: the exercise's own limit). CPU time gets the same.
        memory_mb: address-space limit of the child process.

    Returns:
        a :class:`CheckResult`; ``.passed`` is True only when every case passes.

    Raises:
        FileNotFoundError / ValueError: no such file, or no exercise of that name.
    """
    name = name or exercise_of(path)
    ex = catalog.get(name)
    path = str(Path(path).resolve())
    if not Path(path).is_file():
        raise FileNotFoundError(f"no exercise file at {path}")
    timeout = float(timeout or ex.timeout)
    result = CheckResult(name, path, hints={})
    root = str(Path(__file__).resolve().parents[2])  # the folder holding the cnnlab package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="cnnlab-check-") as tmp:
        out_json, err_path = os.path.join(tmp, "result.json"), os.path.join(tmp, "stderr.txt")
        with open(err_path, "wb") as err_file:  # a file, not a pipe: endless printing cannot fill our memory
            proc = subprocess.Popen([sys.executable, "-m", "cnnlab.exercises._child", path, name, out_json],
                                    stdout=subprocess.DEVNULL, stderr=err_file, env=env, cwd=tmp,
                                    preexec_fn=_limits(memory_mb, int(timeout) + 1))
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                timed_out = True
            else:
                timed_out = False
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # grandchildren the learner may have started
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        with open(err_path, "rb") as f:
            f.seek(max(0, os.path.getsize(err_path) - 4096))
            err = f.read()
        if timed_out:
            result.error = (f"stopped after {timeout:g} s of wall-clock time: an infinite loop, or code far too "
                            f"slow (loops over every pixel of a big array?)")
            return result
        if os.path.exists(out_json):
            with open(out_json) as f:
                data = json.load(f)
            result.cases, result.error = data["cases"], data["error"]
            if result.error == "memory":
                result.error = _memory_message(memory_mb)
        elif proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            result.error = f"stopped after {int(timeout) + 1} s of CPU time: an infinite loop, or code far too slow"
        else:
            tail = err.decode(errors="replace").strip().splitlines()[-3:]
            if any("MemoryError" in line or "Cannot allocate" in line for line in tail):
                result.error = _memory_message(memory_mb)
            else:
                result.error = (f"the grading process ended with status {proc.returncode}: "
                                + (" | ".join(tail) or "no message"))
    result.hints = {c["hint"]: ex.hints[c["hint"]] for c in result.cases if c.get("hint") in ex.hints}
    return result


def _memory_message(memory_mb: int) -> str:
    return (f"ran out of memory: your code asked for more than the {memory_mb} MB allowed "
            f"(an array far larger than the input? a shape typo like np.zeros((N*H*W)**2)?)")
