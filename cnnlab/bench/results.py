"""The benchmark's settings and results: ``BenchConfig``, ``Row``, ``BenchResult``."""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field

from cnnlab.bench.flops import MNIST_TEST, MNIST_TRAIN, RGB_BATCH, RGB_SIZES

__all__ = ["BenchConfig", "Row", "BenchResult", "PARTS"]

#: the parts of a run, in the order they run (``--only``)
PARTS = ("train", "inference", "layers", "rgb")


@dataclass
class BenchConfig:
    """Settings of a vs-PyTorch run (the command line's options).

    Attributes:
        limit: training images per epoch (60,000: a full MNIST epoch).
        test_limit: test images for inference (10,000: all of them).
        repeats: runs per figure (medians are reported).
        batch_sizes, optimizers: the training-epoch grid (``"sgd"``, ``"adam"``).
        doctor_off: also time cnnlab's fit with ``doctor=False`` (first batch size, both optimizers).
        infer_batch: images per forward pass for inference.
        layer_batch, layer_iters: batch and calls per timing of the layer rows.
        layers: layer rows to time (names of ``LAYERS``), None for all, () for none.
        rgb_sizes, rgb_batch: input sizes (px) and batch of the RGB-block rows (``flops.RGB_SIZES``);
            each size runs in a fresh pair of workers so that its peak memory is its own.
        parts: what to time, any of ``PARTS``: ``"train"`` (the epochs and the memory after
            them), ``"inference"``, ``"layers"``, ``"rgb"``.
        threads: threads per framework (default: the machine's cores).
        gap: seconds of pause before each timing (the other worker's threads go to sleep).
    """

    limit: int = MNIST_TRAIN
    test_limit: int = MNIST_TEST
    repeats: int = 3
    batch_sizes: tuple = (64, 128)
    optimizers: tuple = ("sgd", "adam")
    doctor_off: bool = True
    infer_batch: int = 256
    layer_batch: int = 64
    layer_iters: int = 20
    layers: tuple | None = None
    rgb_sizes: tuple = RGB_SIZES
    rgb_batch: int = RGB_BATCH
    parts: tuple = PARTS
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    gap: float = 0.3


@dataclass
class Row:
    """One line of the table: seconds per repeat for each framework.

    Attributes:
        group: ``"train"``, ``"inference"``, ``"layer"``, ``"rgb"`` (the RGB block, seconds) or
            ``"memory"`` (MB; one after training, one per RGB block size).
        name: what was timed.
        cnnlab, torch: one value per repeat (seconds; MB for memory rows).
        flops: GEMM FLOPs of one timed unit (for GFLOP/s), or None.
        note: text shown after the name.
    """

    group: str
    name: str
    cnnlab: list = field(default_factory=list)
    torch: list = field(default_factory=list)
    flops: float | None = None
    images: int | None = None

    @property
    def a(self) -> float:
        return statistics.median(self.cnnlab) if self.cnnlab else math.nan

    @property
    def b(self) -> float:
        return statistics.median(self.torch) if self.torch else math.nan

    @property
    def ratio(self) -> float:
        """cnnlab / PyTorch (time, or memory): below 1 means cnnlab is faster (smaller)."""
        return self.a / self.b if self.b > 0 else math.nan


@dataclass
class BenchResult:
    """Rows plus what is needed to reproduce and judge them."""

    rows: list
    config: BenchConfig
    machine: dict
    peak_gflops: float
    load_before: tuple
    load_after: tuple
    seconds: float
    load_max: float = math.nan


# ===== workers =============================================================================================
