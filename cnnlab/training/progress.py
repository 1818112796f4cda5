"""What the user sees and does while ``fit`` runs: the progress bar and Ctrl-C."""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

from tqdm.auto import tqdm

__all__ = ["Progress", "graceful_sigint", "StopRequested", "Diverged"]


class StopRequested(Exception):
    """Raised at a batch boundary after Ctrl-C."""


class Diverged(Exception):
    def __init__(self, epoch, batch, loss, location):
        super().__init__()
        self.epoch, self.batch, self.loss, self.location = epoch, batch, loss, location


@contextlib.contextmanager
def graceful_sigint(flag: dict, announce: bool):
    """Ctrl-C sets ``flag["stop"]`` so training stops at the next batch boundary; a second
    Ctrl-C raises KeyboardInterrupt at once. Only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        flag["stop"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if announce:
            print("\nInterrupted: stopping after this batch (Ctrl-C again to stop at once).", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError):  # e.g. embedded interpreters
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Progress:
    """A tqdm bar per epoch (verbose=1), one line per epoch (verbose=2), or nothing (0)."""

    def __init__(self, verbose: int, epochs: int, steps: int):
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self.bar = None
        self._last = 0.0

    def start_epoch(self, epoch: int, initial: int = 0) -> None:
        self.t0 = self.t_last = time.perf_counter()
        self.seen = 0
        if self.verbose == 1:
            self.bar = tqdm(total=self.steps, initial=initial, desc=f"Epoch {epoch + 1}/{self.epochs}",
                            unit="batch", file=sys.stderr, dynamic_ncols=True, leave=True)

    def batch(self, n: int, mean_loss: float, mean_acc: float) -> None:
        self.seen += n
        self.t_last = time.perf_counter()
        if self.bar is None:
            return
        if self.t_last - self._last > 0.25:  # formatting the postfix every batch would cost more than it shows
            self._last = self.t_last
            rate = self.seen / max(self.t_last - self.t0, 1e-9)
            self.bar.set_postfix_str(f"loss={mean_loss:.4f} accuracy={mean_acc:.4f} {rate:,.0f} img/s",
                                     refresh=False)  # the same metric names as the epoch's summary
        self.bar.update(1)

    def end_epoch(self, epoch: int, logs: dict) -> float:
        """Show the epoch's numbers; returns the epoch's wall time (validation included)."""
        elapsed = time.perf_counter() - self.t0
        rate = self.seen / max(self.t_last - self.t0, 1e-9)  # training images only
        parts = [f"{k}={v:.4f}" for k, v in logs.items() if k != "lr"] + [f"lr={logs['lr']:.3g}", f"{rate:,.0f} img/s"]
        if self.bar is not None:
            self.bar.set_postfix_str(" ".join(parts), refresh=True)
            self.bar.close()
            self.bar = None
        elif self.verbose == 2:
            print(f"Epoch {epoch + 1}/{self.epochs} - {elapsed:.1f}s - " + " - ".join(parts), flush=True)
        return elapsed

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
