#!/usr/bin/env python
"""Kill training at random moments and check that it always recovers, exactly.

For each trial the script trains a small CNN on the first MNIST images (with BatchNorm,
Dropout, random shifts, a validation split and a cosine schedule, so every piece of state a
resume must restore is in play) in a child process, ``fit(checkpoint=..., resume_from=...)``:

1. once without interruption: the reference weights;
2. again, SIGKILL-ing the child at random moments, including *while the checkpoint is being
   written* (the child's fsync is slowed down and the parent kills as soon as the temp file
   appears), or sending SIGINT (Ctrl-C: the child must save a mid-epoch checkpoint and exit);
   after every kill the checkpoint on disk must be intact and loadable
   (``cnnlab.models.io.read_archive`` and ``cnnlab.training.checkpoints.load_checkpoint``) and must never go
   back in time; then the child is restarted with ``resume_from`` the checkpoint;
3. the final weights of the interrupted run must equal the reference bit for bit.

Usage::

    python scripts/kill_resume.py --trials 4 --kills 6          # the long run
    python scripts/kill_resume.py --cli --trials 1 --kills 3     # through `python -m cnnlab train`

``python scripts/kill_resume.py driver ...`` is the child (see ``driver``).
``tests/reliability/test_faults.py`` runs a short version in CI.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve()
CKPT = "ckpt.npz"
FINAL = "final.npz"
EXIT_INTERRUPTED = 130


# ===== the child ==================================================================================
def tiny_model(seed: int):
    """28x28 -> Conv 4 + BatchNorm + ReLU + pool -> Conv 8 + ReLU + pool -> Dropout -> Dense 10."""
    from cnnlab.layers import BatchNorm2d, Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
    from cnnlab.models import Sequential

    rng = np.random.default_rng(seed)
    return Sequential([
        Conv2d(1, 4, 3, padding=1, bias=False, rng=rng), BatchNorm2d(4), ReLU(), MaxPool2d(2),
        Conv2d(4, 8, 3, rng=rng), ReLU(), MaxPool2d(2),
        Flatten(), Dropout(0.25, rng=rng), Dense(8 * 6 * 6, 10, rng=rng),
    ], input_shape=(1, 28, 28), name="tiny_kill_cnn")


def prepare_data(path: Path, n: int) -> Path:
    """Save the first ``n`` MNIST training images as float32 (N, 1, 28, 28) and int64 labels."""
    from cnnlab.datasets import load_mnist

    (x, y), _ = load_mnist()
    np.savez(path, x=(x[:n, None] / np.float32(255)).astype(np.float32), y=y[:n].astype(np.int64))
    return path


def driver(argv) -> int:
    """The child: train (or resume) and write ``final.npz``; exit 130 when interrupted."""
    p = argparse.ArgumentParser(prog="kill_resume.py driver")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--slow-write", type=float, default=0.0, help="seconds to sleep in each checkpoint fsync")
    a = p.parse_args(argv)

    import cnnlab.utils.files
    from cnnlab.training.schedules import CosineDecay
    from cnnlab.training.checkpoints import load_checkpoint
    from cnnlab.training import fit

    if a.slow_write:
        real_fsync = os.fsync

        def slow_fsync(fd):  # widen the window in which the temp file exists
            time.sleep(a.slow_write)
            real_fsync(fd)

        cnnlab.utils.files.os = _OsProxy(os, fsync=slow_fsync)  # the atomic writer of every save

    data = np.load(a.data)
    x, y = data["x"], data["y"]
    ckpt, final = a.out / CKPT, a.out / FINAL
    model = tiny_model(a.seed)
    model.compile("adam", lr=2e-3)
    resume = ckpt if ckpt.exists() else None
    if resume is not None:
        state = load_checkpoint(resume)
        if state.epoch >= a.epochs and state.progress is None:  # killed after the last checkpoint
            state.model.save(final)
            print("DONE (from the last checkpoint)", flush=True)
            return 0
    print(f"START resume={resume is not None}", flush=True)
    history = fit(model, x, y, epochs=a.epochs, batch_size=a.batch_size, validation_split=0.125, seed=a.seed,
                  augment=1, callbacks=[CosineDecay(a.epochs)], verbose=0, checkpoint=ckpt, resume_from=resume)
    if history.stop_reason == "interrupted":
        print(f"INTERRUPTED at {history.stopped_at}", flush=True)
        return EXIT_INTERRUPTED
    if history.stop_reason != "completed":
        print(f"STOPPED: {history.stop_reason}", flush=True)
        return 1
    model.save(final)
    print("DONE", flush=True)
    return 0


class _OsProxy:
    """``os`` with some functions replaced (for the child's slowed-down writes only)."""

    def __init__(self, real, **overrides):
        self._real, self._over = real, overrides

    def __getattr__(self, name):
        return self._over.get(name) or getattr(self._real, name)


# ===== the parent ===================================================================================
@dataclass
class Tally:
    trials: int = 0
    kills: int = 0
    kills_during_write: int = 0
    kills_missed: int = 0  # the child had already finished when the signal was due
    interrupts: int = 0  # SIGINT during training: the child saved a checkpoint and exited 130
    interrupts_early: int = 0  # SIGINT before fit had started (KeyboardInterrupt at start-up)
    resumes: int = 0
    checkpoints_checked: int = 0
    stale_temp_files: int = 0
    equal_to_reference: int = 0
    problems: list = field(default_factory=list)


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SCRIPT.parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_child(data: Path, out: Path, epochs: int, seed: int, slow_write: float = 0.0, cli: bool = False,
                limit: int = 512) -> subprocess.Popen:
    if cli:
        cmd = [sys.executable, "-m", "cnnlab", "train", "--model", "lenet5", "--limit", str(limit), "--test-limit",
               "200", "--epochs", str(epochs), "--seed", str(seed), "--out", str(out), "--quiet"]
        if (out / "checkpoint.npz").exists():
            cmd.append("--resume")
    else:
        cmd = [sys.executable, str(SCRIPT), "driver", "--data", str(data), "--out", str(out), "--epochs", str(epochs),
               "--seed", str(seed), "--slow-write", str(slow_write)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True)


def final_arrays(out: Path, cli: bool) -> dict:
    from cnnlab.models.io import read_archive

    _, arrays = read_archive(out / ("model.npz" if cli else FINAL))
    return {k: v for k, v in arrays.items() if k.startswith("model/")}


def check_checkpoint(path: Path, last_epoch: list, tally: Tally) -> None:
    """The checkpoint left by a killed child must load and must not go back in time."""
    from cnnlab.models.io import read_archive
    from cnnlab.training.checkpoints import load_checkpoint

    if not path.exists():
        if last_epoch[0] is not None:
            tally.problems.append(f"checkpoint {path} vanished after epoch {last_epoch[0]}")
        return
    header, _ = read_archive(path)  # raises ModelFileError if torn
    state = load_checkpoint(path)
    position = (int(state.epoch), int(state.progress["batch"]) if state.progress else 0)
    if last_epoch[0] is not None and position < last_epoch[0]:
        tally.problems.append(f"checkpoint went back from {last_epoch[0]} to {position}")
    last_epoch[0] = position
    tally.checkpoints_checked += 1


def wait_for_temp(folder: Path, proc: subprocess.Popen, timeout: float, name: str, nth: int = 1) -> bool:
    """Poll until the ``nth`` distinct checkpoint temp file (``.<name>.*.tmp``) of this child
    appears; False if the child ends first."""
    t_end = time.monotonic() + timeout
    before = {p.name for p in folder.glob(f".{name}.*.tmp")}  # stale ones from killed runs
    seen: set = set()
    while time.monotonic() < t_end and proc.poll() is None:
        seen |= {p.name for p in folder.glob(f".{name}.*.tmp")} - before
        if len(seen) >= nth:
            return True
        time.sleep(0.002)
    return False


def run_reference(data: Path, work: Path, epochs: int, seed: int, cli: bool) -> tuple[dict, float]:
    out = work / "reference"
    out.mkdir()
    t0 = time.perf_counter()
    proc = start_child(data, out, epochs, seed, cli=cli)
    stdout, stderr = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed ({proc.returncode}):\n{stdout}\n{stderr}")
    return final_arrays(out, cli), time.perf_counter() - t0


def run_trial(data: Path, work: Path, epochs: int, seed: int, kills: int, rng, tally: Tally, cli: bool = False,
              slow_write: float = 0.25, log=print, modes=None) -> bool:
    """One reference run and one run interrupted ``kills`` times; True if the weights agree.

    ``modes``: optional list of ``(mode, nth)`` to use in order instead of random choices, with
    mode ``"random"``, ``"during_write"`` (kill while the ``nth`` checkpoint of the child is
    being written) or ``"sigint"``."""
    reference, duration = run_reference(data, work, epochs, seed, cli)
    log(f"  reference run: {duration:.1f} s")
    out = work / "interrupted"
    out.mkdir()
    ckpt_name = "checkpoint.npz" if cli else CKPT
    last = [None]
    done = 0
    tally.trials += 1
    while True:
        proc = start_child(data, out, epochs, seed, slow_write=slow_write if done < kills else 0.0, cli=cli)
        if done > 0 or (out / ckpt_name).exists():
            tally.resumes += 1
        if done >= kills:
            stdout, stderr = proc.communicate(timeout=600)
            if proc.returncode != 0:
                tally.problems.append(f"final run exited {proc.returncode}: {stderr[-500:]}")
                return False
            break
        nth = None
        if modes is not None and done < len(modes):
            mode, nth = modes[done]
        else:
            mode = str(rng.choice(["random", "during_write", "sigint"] if not cli else ["random", "during_write"],
                                  p=[0.45, 0.4, 0.15] if not cli else [0.5, 0.5]))
        if mode == "during_write":
            remaining = epochs - (last[0][0] if last[0] is not None else 0)
            hit = wait_for_temp(out, proc, timeout=duration * 5 + 60, name=ckpt_name,
                                nth=nth or int(rng.integers(1, max(1, remaining) + 1)))
            if hit:
                time.sleep(float(rng.uniform(0, slow_write * 0.8)) if not cli else 0)
        else:
            time.sleep(float(rng.uniform(0.3, max(0.5, duration * 1.2))))
        if proc.poll() is not None:  # finished before the signal: start over from scratch next time
            proc.communicate()
            tally.kills_missed += 1
            for f in out.iterdir():
                f.unlink()
            last = [None]
            continue
        if mode == "sigint":
            proc.send_signal(signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
                tally.problems.append("SIGINT did not stop the child within 120 s")
            if proc.returncode not in (EXIT_INTERRUPTED, 0, -signal.SIGINT):
                tally.problems.append(f"SIGINT: child exited {proc.returncode}: {stderr[-300:]}")
            if proc.returncode == EXIT_INTERRUPTED:
                tally.interrupts += 1
            elif proc.returncode == -signal.SIGINT:
                tally.interrupts_early += 1
            if proc.returncode == 0:  # finished before the signal arrived
                tally.kills_missed += 1
                for f in out.iterdir():
                    f.unlink()
                last = [None]
                continue
        else:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            tally.kills += 1
            tally.kills_during_write += mode == "during_write" and any(out.glob(f".{ckpt_name}.*.tmp"))
        done += 1
        try:
            check_checkpoint(out / ckpt_name, last, tally)
        except Exception as err:  # noqa: BLE001 - a torn checkpoint is exactly the failure we look for
            tally.problems.append(f"checkpoint unreadable after a {mode} kill: {type(err).__name__}: {err}")
            return False
        log(f"    {mode:<12} -> checkpoint at (epoch, batch) {last[0]}")
    tally.stale_temp_files += len(list(out.glob(".*.tmp")))
    got = final_arrays(out, cli)
    same = got.keys() == reference.keys() and all(
        got[k].dtype == reference[k].dtype and got[k].tobytes() == reference[k].tobytes() for k in reference)
    if same:
        tally.equal_to_reference += 1
    else:
        diff = max(float(np.max(np.abs(got[k].astype(np.float64) - reference[k]))) for k in reference if k in got)
        tally.problems.append(f"final weights differ from the uninterrupted run (max abs diff {diff:g})")
    return same


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["driver"]:
        return driver(argv[1:])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--kills", type=int, default=6, help="interruptions per trial")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cli", action="store_true", help="train through `python -m cnnlab train` instead")
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    tally = Tally()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnlab-kill-") as tmp:
        data = prepare_data(Path(tmp) / "data.npz", a.images)
        for trial in range(a.trials):
            work = Path(tmp) / f"trial{trial}"
            work.mkdir()
            print(f"trial {trial + 1}/{a.trials} (seed {a.seed + trial})", flush=True)
            ok = run_trial(data, work, a.epochs, a.seed + trial, a.kills, rng, tally, cli=a.cli)
            print(f"  final weights equal to the uninterrupted run: {ok}", flush=True)
    cmd = "python scripts/kill_resume.py " + " ".join(argv)
    print(f"\n{cmd}   ({time.perf_counter() - t0:.0f} s)")
    print(json.dumps({k: v for k, v in vars(tally).items() if k != "problems"}, indent=1))
    for problem in tally.problems:
        print("PROBLEM", problem)
    return 0 if not tally.problems and tally.equal_to_reference == tally.trials else 1


if __name__ == "__main__":
    sys.exit(main())
