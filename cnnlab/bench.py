"""``cnnlab bench``: cnnlab beside PyTorch on the CPU, timed fairly; and the implementation ladder.

**vs PyTorch** (the default): one process tree, a parent that drives two persistent worker
processes, one per framework, and interleaves them (A B, then B A, ...) so that machine noise
hits both alike. Separate processes matter: PyTorch's OpenMP threads and NumPy's OpenBLAS
threads busy-wait between calls, and in one process they fight over the cores (PyTorch's
conv1 measured 200 ms instead of 4 ms that way). Each worker pauses ``gap`` seconds before
each timing so that the other one's threads have gone to sleep. What is timed, float32:

* a full training epoch of ``zoo.simple_cnn`` on MNIST (60,000 images) at batch 64 and 128,
  with SGD + momentum and with Adam: cnnlab's own ``fit`` as users get it (``verbose=0``,
  training doctor on; doctor off too), PyTorch a plain idiomatic loop with ``torch.optim``
  over the same data (shuffled each epoch, loss and accuracy accumulated per batch); each
  repeat trains a fresh model from the same seed;
* inference on the 10,000 test images (``model.predict``; PyTorch ``inference_mode`` + softmax);
* forward + backward of every layer type at the shapes of ``simple_cnn`` and ``bn_cnn``;
* the optimizer steps on simple_cnn's 421,642 parameters;
* each worker's peak resident memory (``getrusage``) after its training epochs.

Every figure is the median of ``repeats`` runs, printed with the cnnlab/PyTorch time ratio and
the arithmetic rate (GFLOP/s of the convolutions and matrix products, forward = 1x,
training = 3x minus the first layer's input gradient) against the machine's float32
matrix-multiply peak, measured with ``np.matmul`` on 2048x2048 in the cnnlab worker.

**Ladder** (``--impl naive --impl im2col --impl fast``): cnnlab alone, forward + backward of
conv and max-pool layers at small shapes for each implementation, so a learner sees each step
up (for ``fast``, with the NumPy and the Numba backend).

Example (the test suite runs this machinery on tiny sizes)::

    cnnlab bench --repeats 3 --markdown BENCHMARKS.md     # about 15 minutes on 2 cores
    cnnlab bench --quick                                  # a short smoke run
    cnnlab bench --impl naive --impl im2col --impl fast   # the ladder, a few seconds
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
import traceback
from dataclasses import dataclass, field

from cnnlab._argtypes import bounded_int, thread_count

__all__ = ["BenchConfig", "Row", "BenchResult", "run_vs_torch", "format_table", "to_markdown", "run_ladder",
           "format_ladder", "add_commands", "main", "LAYERS"]

MNIST_TRAIN, MNIST_TEST = 60_000, 10_000

# ----- what is timed ----------------------------------------------------------------------------------------
#: layer rows: name -> (kind, settings, per-sample input shape). ``no_dx``: the layer's input
#: gradient is not computed (a first layer: its input is the data), in both frameworks.
LAYERS = {
    "conv1 1->32 3x3 @28 (no dx)": ("conv", dict(cin=1, cout=32, no_dx=True), (1, 28, 28)),
    "relu @32x28x28": ("relu", {}, (32, 28, 28)),
    "maxpool 2 @32x28x28": ("maxpool", {}, (32, 28, 28)),
    "conv1+relu+pool fused (no dx)": ("fused", dict(cin=1, cout=32, no_dx=True), (1, 28, 28)),
    "conv2 32->64 3x3 @14": ("conv", dict(cin=32, cout=64), (32, 14, 14)),
    "relu @64x14x14": ("relu", {}, (64, 14, 14)),
    "maxpool 2 @64x14x14": ("maxpool", {}, (64, 14, 14)),
    "conv2+relu+pool fused": ("fused", dict(cin=32, cout=64), (32, 14, 14)),
    "flatten @64x7x7": ("flatten", {}, (64, 7, 7)),
    "dense 3136->128": ("dense", dict(cin=3136, cout=128), (3136,)),
    "relu @128": ("relu", {}, (128,)),
    "dense 128->10": ("dense", dict(cin=128, cout=10), (128,)),
    "bn_cnn conv 1->16 nobias @28 (no dx)": ("conv", dict(cin=1, cout=16, bias=False, no_dx=True), (1, 28, 28)),
    "bn_cnn batchnorm2d 16 @28": ("bn", dict(c=16), (16, 28, 28)),
    "bn_cnn conv 16->32 nobias @14": ("conv", dict(cin=16, cout=32, bias=False), (16, 14, 14)),
    "bn_cnn batchnorm2d 32 @14": ("bn", dict(c=32), (32, 14, 14)),
    "bn_cnn conv 32->64 nobias @7": ("conv", dict(cin=32, cout=64, bias=False), (32, 7, 7)),
    "bn_cnn batchnorm2d 64 @7": ("bn", dict(c=64), (64, 7, 7)),
    "bn_cnn globalavgpool @64x7x7": ("gap", {}, (64, 7, 7)),
    "bn_cnn dense 64->10": ("dense", dict(cin=64, cout=10), (64,)),
    "sgd+momentum step (421,642 params)": ("optim", dict(opt="sgd"), ()),
    "adam step (421,642 params)": ("optim", dict(opt="adam"), ()),
}

#: forward FLOPs per image of simple_cnn's GEMM work: conv1, conv2, dense1, dense2 (2 per multiply-add)
_FLOPS_CONV1 = 2 * 32 * 9 * 28 * 28
_FLOPS_FWD = _FLOPS_CONV1 + 2 * 64 * 288 * 14 * 14 + 2 * 3136 * 128 + 2 * 128 * 10
#: training: forward, dW of every layer, dX of every layer but the first
_FLOPS_TRAIN = 3 * _FLOPS_FWD - _FLOPS_CONV1

OPTIMIZERS = {"sgd": ("SGD+momentum", dict(lr=0.01, momentum=0.9)), "adam": ("Adam", dict(lr=1e-3))}


def _layer_flops(kind: str, s: dict, shape: tuple, batch: int) -> float | None:
    """GEMM FLOPs of one forward + backward (None for layers without matrix products)."""
    if kind in ("conv", "fused"):
        fwd = 2 * batch * s["cout"] * s["cin"] * 9 * shape[1] * shape[2]
        return fwd * (2 if s.get("no_dx") else 3)
    if kind == "dense":
        return 3 * 2 * batch * s["cin"] * s["cout"]
    return None


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
    threads: int = field(default_factory=lambda: os.cpu_count() or 1)
    gap: float = 0.3


@dataclass
class Row:
    """One line of the table: seconds per repeat for each framework.

    Attributes:
        group: ``"train"``, ``"inference"``, ``"layer"`` or ``"memory"``.
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
def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _median_call(fn, iters: int) -> float:
    """Median seconds of ``fn()`` over ``iters`` calls after 3 warm-up calls (results kept
    alive until the next call, as in a training loop)."""
    keep = None
    for _ in range(3):
        keep = fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        keep = fn()
        times.append(time.perf_counter() - t)
    del keep
    return statistics.median(times)


def _load_data(limit: int, test_limit: int):
    import numpy as np

    from cnnlab.datasets import add_channel_axis, load_mnist, to_float

    (xtr, ytr), (xte, yte) = load_mnist()
    prep = lambda a: add_channel_axis(to_float(a))  # noqa: E731  (N, 28, 28) uint8 -> (N, 1, 28, 28) float32
    reps = -(-limit // len(xtr))  # --limit above 60,000 repeats the data
    xtr, ytr = np.concatenate([xtr] * reps)[:limit], np.concatenate([ytr] * reps)[:limit]
    return prep(xtr), ytr.astype(np.int64), prep(xte[:test_limit]), yte[:test_limit].astype(np.int64)


class _CnnlabRunner:
    """The cnnlab side: everything as a user runs it."""

    def __init__(self, threads: int):
        import numpy as np

        self.np = np
        self.data = None

    def load(self, limit, test_limit):
        self.data = _load_data(limit, test_limit)
        return _peak_rss_mb()

    def warmup(self):
        # compiles (or loads from the disk cache) the Numba kernels once, before any timing
        t = time.perf_counter()
        x, y = self.data[0][:256], self.data[1][:256]
        for opt in OPTIMIZERS:
            self.epoch(64, opt, True, 0, n=len(x))
        self._infer_batches(x, 64)
        return time.perf_counter() - t

    def _model(self, opt):
        from cnnlab.zoo import simple_cnn

        model = simple_cnn(seed=0)
        model.compile(opt, **OPTIMIZERS[opt][1])
        return model

    def epoch(self, batch, opt, doctor, seed, n=None):
        x, y = self.data[0], self.data[1]
        if n is not None:
            x, y = x[:n], y[:n]
        model = self._model(opt)
        t = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=batch, verbose=0, doctor=doctor, seed=seed)
        return time.perf_counter() - t

    def _infer_batches(self, x, batch):
        from cnnlab.zoo import simple_cnn

        model = simple_cnn(seed=0)
        t = time.perf_counter()
        model.predict(x, batch_size=batch)
        return time.perf_counter() - t

    def infer(self, batch):
        return self._infer_batches(self.data[2], batch)

    def layer(self, name, batch, iters):
        np = self.np
        from cnnlab import layers as L
        from cnnlab.layers.conv import ConvReLUMaxPool

        kind, s, shape = LAYERS[name]
        rng = np.random.default_rng(0)
        if kind == "optim":
            from cnnlab.optim import get_optimizer
            from cnnlab.zoo import simple_cnn

            params = simple_cnn(seed=0).parameters()
            for p in params:
                p.grad = rng.standard_normal(p.shape, dtype=np.float32)
            opt = get_optimizer(s["opt"], **OPTIMIZERS[s["opt"]][1])
            opt.set_parameters(params)
            return _median_call(opt.step, iters)
        make = {
            "conv": lambda: L.Conv2d(s["cin"], s["cout"], 3, padding=1, bias=s.get("bias", True), rng=0),
            "fused": lambda: ConvReLUMaxPool(L.Conv2d(s["cin"], s["cout"], 3, padding=1, rng=0), L.ReLU(),
                                             L.MaxPool2d(2)),
            "relu": L.ReLU, "maxpool": lambda: L.MaxPool2d(2), "flatten": L.Flatten,
            "dense": lambda: L.Dense(s["cin"], s["cout"], rng=0), "bn": lambda: L.BatchNorm2d(s["c"]),
            "gap": L.GlobalAvgPool2d,
        }[kind]
        layer = make()
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        dout = rng.standard_normal(layer.forward(x, training=True).shape, dtype=np.float32)
        no_dx = s.get("no_dx", False)

        def step():
            layer.forward(x, training=True)
            return layer.backward(dout, need_dx=False) if no_dx else layer.backward(dout)
        return _median_call(step, iters)

    def matmul_peak(self):
        np = self.np
        a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
        out = np.empty_like(a)
        return 2 * 2048**3 / _median_call(lambda: np.matmul(a, a, out=out), 10) / 1e9

    def rss(self):
        return _peak_rss_mb()

    def info(self):
        np = self.np
        from cnnlab import backend

        blas = {}
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        except Exception:  # noqa: BLE001  (older NumPy: no dict mode)
            pass
        info = {"numpy": np.__version__, "python": platform.python_version(), "backend": backend.get_backend(),
                "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip()}
        if backend.use_numba():
            import numba

            info["numba"] = f"{numba.__version__} (threading layer: {backend.threading_layer()})"
        return info


class _TorchRunner:
    """The PyTorch side: a plain idiomatic training loop with ``torch.optim``."""

    def __init__(self, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.data = None

    def load(self, limit, test_limit):
        x, y, xt, yt = _load_data(limit, test_limit)
        t = self.torch
        self.data = (t.from_numpy(x), t.from_numpy(y), t.from_numpy(xt), t.from_numpy(yt))  # shares memory
        return _peak_rss_mb()

    def warmup(self):
        t0 = time.perf_counter()
        for opt in OPTIMIZERS:
            self.epoch(64, opt, True, 0, n=256)
        self._infer_batches(self.data[2][:256], 64)
        return time.perf_counter() - t0

    def _net(self):
        nn = self.torch.nn
        self.torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))

    def epoch(self, batch, opt, doctor, seed, n=None):
        torch = self.torch
        F = torch.nn.functional
        x, y = self.data[0], self.data[1]
        if n is not None:
            x, y = x[:n], y[:n]
        net = self._net()
        cls = torch.optim.SGD if opt == "sgd" else torch.optim.Adam
        optimizer = cls(net.parameters(), **OPTIMIZERS[opt][1])
        gen = torch.Generator().manual_seed(seed)
        t = time.perf_counter()
        net.train()
        perm = torch.randperm(len(x), generator=gen)
        total, correct = 0.0, 0
        for start in range(0, len(x), batch):
            idx = perm[start:start + batch]
            xb, yb = x[idx], y[idx]
            optimizer.zero_grad(set_to_none=True)
            out = net(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
        return time.perf_counter() - t

    def _infer_batches(self, x, batch):
        torch = self.torch
        net = self._net().eval()
        out = torch.empty((len(x), 10))
        t = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                out[start:start + batch] = torch.softmax(net(x[start:start + batch]), dim=1)
        return time.perf_counter() - t

    def infer(self, batch):
        return self._infer_batches(self.data[2], batch)

    def layer(self, name, batch, iters):
        torch = self.torch
        nn = torch.nn
        import numpy as np

        kind, s, shape = LAYERS[name]
        rng = np.random.default_rng(0)
        if kind == "optim":
            params = list(self._net().parameters())
            for p in params:
                p.grad = torch.from_numpy(rng.standard_normal(tuple(p.shape), dtype=np.float32))
            cls = torch.optim.SGD if s["opt"] == "sgd" else torch.optim.Adam
            optimizer = cls(params, **OPTIMIZERS[s["opt"]][1])
            return _median_call(optimizer.step, iters)
        module = {
            "conv": lambda: nn.Conv2d(s["cin"], s["cout"], 3, padding=1, bias=s.get("bias", True)),
            "fused": lambda: nn.Sequential(nn.Conv2d(s["cin"], s["cout"], 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
            "relu": nn.ReLU, "maxpool": lambda: nn.MaxPool2d(2), "flatten": nn.Flatten,
            "dense": lambda: nn.Linear(s["cin"], s["cout"]), "bn": lambda: nn.BatchNorm2d(s["c"]),
            "gap": lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        }[kind]()
        x = torch.from_numpy(rng.standard_normal((batch, *shape), dtype=np.float32))
        x.requires_grad_(not s.get("no_dx", False))
        dout = torch.from_numpy(rng.standard_normal(tuple(module(x).shape), dtype=np.float32))
        params = list(module.parameters())

        def step():
            x.grad = None
            for p in params:
                p.grad = None
            module(x).backward(dout)
            return x.grad
        return _median_call(step, iters)

    def rss(self):
        return _peak_rss_mb()

    def info(self):
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads()}


def _worker(framework: str, threads: int, conn) -> None:
    """A worker process: builds its runner, then answers ``(method, kwargs)`` messages until None."""
    try:
        runner = (_TorchRunner if framework == "torch" else _CnnlabRunner)(threads)
        conn.send(("ok", runner.info()))
    except BaseException:  # noqa: BLE001  (reported to the parent, which raises)
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        message = conn.recv()
        if message is None:
            return
        method, kwargs = message
        try:
            conn.send(("ok", getattr(runner, method)(**kwargs)))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))


class _Workers:
    """The two worker processes (spawned: fresh interpreters, one framework each)."""

    def __init__(self, threads: int):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.procs, self.conns, self.info = {}, {}, {}
        env_keys = ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")
        saved = {k: os.environ.get(k) for k in env_keys}
        try:
            for framework in ("cnnlab", "torch"):
                if framework == "cnnlab" and threads != (os.cpu_count() or 1):
                    for k in env_keys:  # read when the libraries load in the child
                        os.environ[k] = str(threads)
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(framework, threads, child), daemon=True)
                proc.start()
                self.procs[framework], self.conns[framework] = proc, parent
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            for framework in self.procs:
                self.info[framework] = self._receive(framework)
        except BaseException:
            self.close()
            raise

    def _receive(self, framework):
        status, value = self.conns[framework].recv()
        if status != "ok":
            raise RuntimeError(f"the {framework} benchmark worker failed:\n{value}")
        return value

    def call(self, framework: str, method: str, **kwargs):
        self.conns[framework].send((method, kwargs))
        return self._receive(framework)

    def close(self) -> None:
        for framework, conn in self.conns.items():
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for proc in self.procs.values():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


# ===== the vs-PyTorch run ====================================================================================
def _machine() -> dict:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "os": f"{platform.system()} {platform.release()}"}


def run_vs_torch(cfg: BenchConfig | None = None, log=None) -> BenchResult:
    """Run the interleaved benchmark and return its rows (see the module docstring).

    Args:
        cfg: the settings (defaults: full epochs, 3 repeats).
        log: ``log(text)`` for progress lines, or None.
    """
    cfg = cfg or BenchConfig()
    say = log or (lambda text: None)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    workers = _Workers(cfg.threads)
    rows: list[Row] = []
    try:
        loads = [load_before[0]]

        def both(row: Row, method: str, rep: int, **kwargs):
            order = ("cnnlab", "torch") if rep % 2 == 0 else ("torch", "cnnlab")
            for framework in order:
                time.sleep(cfg.gap)
                getattr(row, framework).append(workers.call(framework, method, **kwargs))
            loads.append(os.getloadavg()[0])

        for framework in ("cnnlab", "torch"):
            workers.call(framework, "load", limit=cfg.limit, test_limit=cfg.test_limit)
        warm = {f: workers.call(f, "warmup") for f in ("cnnlab", "torch")}
        say(f"warm-up (first calls, Numba kernels compiled or loaded): cnnlab {warm['cnnlab']:.1f} s, "
            f"torch {warm['torch']:.1f} s")
        peak = workers.call("cnnlab", "matmul_peak")
        say(f"float32 matmul peak (2048x2048, cnnlab worker): {peak:.1f} GFLOP/s")

        # ---- training epochs
        train = []
        for batch in cfg.batch_sizes:
            for opt in cfg.optimizers:
                doctors = (True, False) if cfg.doctor_off and batch == cfg.batch_sizes[0] else (True,)
                for doctor in doctors:
                    name = (f"epoch b{batch} {OPTIMIZERS[opt][0]}" + ("" if doctor else " (cnnlab doctor off)"))
                    train.append((Row("train", name, flops=_FLOPS_TRAIN * cfg.limit, images=cfg.limit),
                                  dict(batch=batch, opt=opt, doctor=doctor)))
        for rep in range(cfg.repeats):
            for row, kw in train:
                both(row, "epoch", rep, seed=rep, **kw)
                say(f"[{rep + 1}/{cfg.repeats}] {row.name}: cnnlab {row.cnnlab[-1]:.2f} s, "
                    f"torch {row.torch[-1]:.2f} s  (load {os.getloadavg()[0]:.2f})")
        rows += [row for row, _ in train]
        rss = Row("memory", f"peak RSS after training (MB, {cfg.limit:,} images)")
        for framework in ("cnnlab", "torch"):
            getattr(rss, framework).append(workers.call(framework, "rss"))

        # ---- inference
        inf = Row("inference", f"predict {cfg.test_limit:,} test images (batch {cfg.infer_batch})",
                  flops=_FLOPS_FWD * cfg.test_limit, images=cfg.test_limit)
        for rep in range(cfg.repeats):
            both(inf, "infer", rep, batch=cfg.infer_batch)
        say(f"{inf.name}: cnnlab {inf.a:.3f} s, torch {inf.b:.3f} s")
        rows.append(inf)

        # ---- layers
        names = list(LAYERS) if cfg.layers is None else list(cfg.layers)
        for name in names:
            kind, s, shape = LAYERS[name]
            row = Row("layer", name, flops=_layer_flops(kind, s, shape, cfg.layer_batch))
            for rep in range(cfg.repeats):
                both(row, "layer", rep, name=name, batch=cfg.layer_batch, iters=cfg.layer_iters)
            say(f"{name}: cnnlab {row.a * 1e3:.3f} ms, torch {row.b * 1e3:.3f} ms")
            rows.append(row)
        rows.append(rss)
    finally:
        workers.close()
    machine = dict(_machine(), **workers.info["cnnlab"], **workers.info["torch"])
    return BenchResult(rows, cfg, machine, peak, load_before, os.getloadavg(), time.perf_counter() - t_start,
                       max(loads))


# ===== output ===============================================================================================
def _value(row: Row, framework: str) -> str:
    v = row.a if framework == "cnnlab" else row.b
    if row.group == "memory":
        return f"{v:,.0f} MB"
    if row.group == "layer":
        return f"{v * 1e3:.3f} ms"
    if row.group == "inference":
        return f"{v:.3f} s ({row.images / v:,.0f} img/s)"
    return f"{v:.2f} s"


def _rate(row: Row, framework: str, peak: float) -> str:
    v = row.a if framework == "cnnlab" else row.b
    if row.flops is None or not v > 0:
        return "-"
    g = row.flops / v / 1e9
    return f"{g:.1f} ({100 * g / peak:.0f}%)"


def _table(result: BenchResult) -> list[list[str]]:
    head = ["", "cnnlab", "PyTorch", "cnnlab/PyTorch", "cnnlab GFLOP/s (% peak)", "PyTorch GFLOP/s (% peak)"]
    lines = [head]
    for row in result.rows:
        name = row.name
        if row.group == "train":
            name = f"train {name} ({row.images:,} images)"
        elif row.group == "layer" and LAYERS.get(row.name, ("",))[0] != "optim":
            name = f"fwd+bwd {name} (batch {result.config.layer_batch})"
        # 3 significant digits: a tiny ratio (one side hit by load on a shared machine) must not print as 0.00
        lines.append([name, _value(row, "cnnlab"), _value(row, "torch"), f"{row.ratio:.3g}",
                      _rate(row, "cnnlab", result.peak_gflops), _rate(row, "torch", result.peak_gflops)])
    return lines


def format_table(result: BenchResult) -> str:
    """The result as aligned plain text."""
    lines = _table(result)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    return "\n".join(text + [_footer(result)])


def _footer(result: BenchResult) -> str:
    cfg = result.config
    return (f"medians of {cfg.repeats} interleaved repeats; float32; {cfg.threads} threads each; matmul peak "
            f"{result.peak_gflops:.1f} GFLOP/s; load average {result.load_before[0]:.2f} before, "
            f"{result.load_after[0]:.2f} after, {result.load_max:.2f} at most; {result.seconds / 60:.1f} min")


#: the targets of the speed work: (what, ratio limit, how to read the ratio)
TARGETS = {"train": 1.25, "inference": 1.25, "memory": 1.5}


def check_targets(result: BenchResult) -> list[tuple[str, float, float, bool]]:
    """``(row name, cnnlab/PyTorch ratio, limit, met)`` for every row that has a target:
    training epochs at most 1.25x PyTorch's time, inference throughput at least 0.8x
    (time at most 1.25x), peak memory at most 1.5x."""
    out = []
    for row in result.rows:
        limit = TARGETS.get(row.group)
        if limit is not None:
            out.append((row.name, row.ratio, limit, bool(row.ratio <= limit)))
    return out


def to_markdown(result: BenchResult, command: str, ladder=None, notes: str | None = None) -> str:
    """BENCHMARKS.md: machine, command, targets, table, ladder and notes (generated, so the
    figures cannot drift from what was measured)."""
    m, cfg = result.machine, result.config
    lines = _table(result)
    md = ["| " + " | ".join(lines[0]) + " |", "|" + "---|" * len(lines[0])]
    md += ["| " + " | ".join(line) + " |" for line in lines[1:]]
    targets = [f"| {name} | {ratio:.2f} | <= {limit} | {'met' if ok else 'NOT met'} |"
               for name, ratio, limit, ok in check_targets(result)]
    parts = [
        "# cnnlab beside PyTorch on the CPU",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M')}, in {result.seconds / 60:.0f} minutes "
        f"(the code: `cnnlab/bench.py`).",
        "",
        f"- Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('os')}; Python {m.get('python')}",
        f"- NumPy {m.get('numpy')} with BLAS {m.get('blas')}; cnnlab backend: {m.get('backend')}"
        + (f", Numba {m['numba']}" if "numba" in m else ""),
        f"- PyTorch {m.get('torch')} (CPU), `torch.set_num_threads({m.get('torch_threads')})`",
        f"- float32 matmul peak (np.matmul 2048x2048, cnnlab worker): {result.peak_gflops:.1f} GFLOP/s",
        f"- Load average (1 min): {result.load_before[0]:.2f} at the start, {result.load_after[0]:.2f} at the end, "
        f"{result.load_max:.2f} at most (the machine is shared; both frameworks were interleaved, so noise "
        f"hits both)",
        f"- Medians of {cfg.repeats} repeats; cnnlab/PyTorch below 1 means cnnlab is faster (or smaller). "
        f"Training: {cfg.limit:,} images per epoch, a fresh simple_cnn (seed 0) each repeat.",
        "",
        "## Targets",
        "",
        "Training epochs at most 1.25x PyTorch's time; inference throughput at least 0.8x PyTorch's "
        "(time at most 1.25x); peak resident memory while training at most 1.5x.",
        "",
        "| row | cnnlab/PyTorch | target | |",
        "|---|---|---|---|",
        *targets,
        "",
        "## All figures",
        "",
        *md,
        "",
    ]
    if ladder:
        parts += ["## The implementation ladder (cnnlab alone)", "",
                  "`cnnlab bench --impl naive --impl im2col --impl fast`: forward + backward per call at small shapes "
                  "(batch 4), float32.", "", "```", format_ladder(ladder), "```", ""]
    if notes:
        parts += [notes.strip(), ""]
    return "\n".join(parts)


# ===== the implementation ladder =============================================================================
#: (name, kind, settings, input shape with batch): small, so that the naive loops finish in seconds
LADDER = [
    ("conv 3->8 3x3 pad 1 @16x16", "conv", dict(cin=3, cout=8), (4, 3, 16, 16)),
    ("conv 8->16 3x3 pad 1 @16x16", "conv", dict(cin=8, cout=16), (4, 8, 16, 16)),
    ("maxpool 2x2 @8x16x16", "maxpool", {}, (4, 8, 16, 16)),
]


def run_ladder(impls=("naive", "im2col", "fast"), repeats: int = 3, log=None) -> list[tuple[str, str, float]]:
    """Forward + backward seconds of each ladder layer for each implementation (cnnlab only).

    ``fast`` is timed with each available backend (``fast (numpy)``, ``fast (numba)``).

    Returns:
        ``[(impl label, layer name, seconds), ...]`` (medians of ``repeats``).
    """
    import numpy as np

    from cnnlab import backend
    from cnnlab.layers import Conv2d, MaxPool2d

    out = []
    for impl in impls:
        labels = [(impl, None)]
        if impl == "fast":
            labels = [("fast (numpy)", "numpy")] + ([("fast (numba)", "numba")] if backend.HAVE_NUMBA else [])
        for label, engine in labels:
            for name, kind, s, shape in LADDER:
                rng = np.random.default_rng(0)
                layer = Conv2d(s["cin"], s["cout"], 3, padding=1, rng=0, impl=impl) if kind == "conv" \
                    else MaxPool2d(2, impl=impl)
                x = rng.standard_normal(shape, dtype=np.float32)
                with backend.backend(engine or backend.get_backend()):
                    dout = rng.standard_normal(layer.forward(x).shape, dtype=np.float32)

                    def step():
                        layer.forward(x, training=True)
                        return layer.backward(dout)
                    step()  # warm up (compiles Numba kernels on a first run)
                    times = []
                    for _ in range(repeats):
                        n, t0 = 0, time.perf_counter()
                        while n < 3 or time.perf_counter() - t0 < 0.2:
                            step()
                            n += 1
                        times.append((time.perf_counter() - t0) / n)
                out.append((label, name, statistics.median(times)))
                if log:
                    log(f"{label:>13}  {name}: {out[-1][2] * 1e3:.3f} ms")
    return out


def format_ladder(results) -> str:
    """The ladder as a table: ms per forward+backward and the speed-up over the first implementation."""
    names = list(dict.fromkeys(name for _, name, _ in results))
    labels = list(dict.fromkeys(label for label, _, _ in results))
    t = {(label, name): sec for label, name, sec in results}
    head = f"{'implementation':<15}" + "".join(f"{n:>32}" for n in names)
    lines = [head, "-" * len(head)]
    for label in labels:
        cells = []
        for n in names:
            base = t[(labels[0], n)]
            cells.append(f"{t[(label, n)] * 1e3:>10.3f} ms ({base / t[(label, n)]:>7.1f}x)".rjust(32))
        lines.append(f"{label:<15}" + "".join(cells))
    return "\n".join(lines + [f"forward + backward per call; (Nx) = speed-up over {labels[0]}"])


# ===== notes for BENCHMARKS.md ===============================================================================
NOTES = """
## What made it fast, and what did not pay

Measured on this machine while developing (2 cores, batch 64, float32; per-step times are
medians over interleaved runs, noisy: the machine is shared).

How noisy: one cnnlab training step at batch 64 takes either ~15 ms or ~23 ms, switching
every few hundred steps (even within one epoch); in the slow stretches every thread's CPU
time grows alike, whichever threading layer runs the kernels, so the machine, not the code,
slows down. Single epochs of either framework therefore vary by up to 40%, and a row's
ratio can move by 0.2 between runs of this script.

Kept (each is explained where it lives):

- **Compiled kernels for everything but the GEMMs** (`cnnlab/ops/_numba_kernels.py`, Numba,
  `cnnlab/backend.py`): NumPy runs im2col/col2im, bias, ReLU and pooling as separate passes on
  one core; ReLU alone went from 2.3 ms to 0.19 ms single-threaded at 32x28x28. Loops index
  1-D views from 0: Numba checks negative indices otherwise, which kept loops from vectorizing
  (im2col 4.5 ms -> 0.9 ms).
- **Fused Conv -> ReLU -> MaxPool** (`conv2d_relu_maxpool2d_forward`, chosen by `fit`,
  `predict` and `evaluate` through `cnnlab.layers.conv.fuse_layers`): one pass over the GEMM
  output instead of five; the same bits as the three layers (tested). Inference 1.8x faster.
- **Max pooling without branches**: a running maximum written per element as branches cost a
  mispredicted branch per value (8.3 ms for conv1's pool); selects and a rare exact redo for
  windows with a NaN: 1.0 ms.
- **No input gradient for the first layer** (`need_dx=False`): PyTorch skips it too.
- **Direct convolution for few inputs per output** (`DIRECT_MAX_K`, conv1's 1x3x3): im2col
  copies 9 values to save 9 multiply-adds; convolving on the wide grid instead: conv1
  forward+backward 3.5 ms -> 1.9 ms.
- **GEMMs over chunks of ~8 MB of columns** (`_GemmConv`; 37 images of conv2 at batch 64):
  the columns stay in cache; OpenBLAS itself runs these operands faster (fwd 193 vs 171
  GFLOP/s, dX 197 vs 184).
- **OpenBLAS threads that sleep** (`backend.calm_openblas`): they spin ~0.1 s after each
  product, so one core was never free for the kernels: process CPU 1.9x wall time; steps
  27-31 ms -> 19-20 ms.
- **Numba's OpenMP layer with a short spin** (`GOMP_SPINCOUNT=1000`, about 25 us, set for
  Numba's libgomp only while it loads; `cnnlab/backend.py`): a kernel starts in ~2 us when
  another just ended, and the workers sleep before the next GEMM needs the cores. Step time
  16.4 ms, against 21.3 ms on Numba's workqueue layer (50-80 us per kernel start) and 30.7 ms
  with OpenMP's default spin (~0.1 s: its workers fight OpenBLAS's for the cores).
- **Batch norm in two kernels** (statistics and normalization in one, both gradients in the
  other, split over the channels, float64 sums): NumPy's path made ~15 passes over the
  activations on one core. BatchNorm2d(16) at 64x16x28x28, forward+backward: 7.4 ms -> 0.8 ms
  when glibc serves its three 3 MB arrays from memory it already holds; when it maps fresh
  memory instead (as in the table's row, which keeps each call's result alive), ~800 page
  faults per call make it 2.2-2.5 ms.
- **Adam in place** (one scratch array instead of five temporaries; the same bits): 0.72 ->
  0.64 ms per step for simple_cnn's 421,642 parameters.

Tried, not kept:

- Numba's OpenMP layer with its default spin, or with `OMP_WAIT_POLICY=passive`, and the
  workqueue layer (used until the short spin above was found): all slower, see above.
- Single-threaded kernels (`NUMBA_NUM_THREADS=1`, to leave OpenBLAS a core): 5-10% slower.
- Our own 2-way split of the GEMMs over Python threads with single-threaded OpenBLAS: GEMMs
  13% slower, which the freed kernels did not win back.
- Channels-last (NHWC) columns: forward GEMM 3.1 vs 2.9 ms; only dX was faster (2.5 vs 3.0
  ms) and its col2im would read 36 of every 1,152 bytes.
- Winograd F(2x2, 3x3) for conv2 (2.25x fewer multiplications; implemented, tested, removed):
  its 16 small products per step took 7.3 ms instead of 8.6 (K = 32 or 64 runs OpenBLAS at
  93-146 GFLOP/s), but the tile transforms write or read 16 scattered streams per tile and
  took 8-11 ms (input 2.4, dM 4.9, output 1.7, dx 1.1-2.2): slower overall.
- Sparse backward (75% of the conv's gradient is zero after a 2x2 pool): the maximum's
  position depends on the filter, so no smaller dense GEMM exists, and a scattered product
  ran slower than OpenBLAS on the dense one.
- `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`: glibc already reuses the big buffers
  after the first steps (16 page faults per step -> 0), no measurable change; not set.
- Dropping the training doctor's checks: no measurable cost (gradient norms every 50
  batches, ReLU activity every 100).

First-call compile cost of the kernels (cached on disk afterwards, `cache=True`): about
25 s per dtype for all 17 kernels on this machine (`NUMBA_CACHE_DIR=$(mktemp -d) python -c
"..."`, see the report); loading them from the cache: 0.5 s. A cold test suite run compiles
both dtypes once: 2 min 52 s for the whole suite, 2 min warm.
"""


# ===== command line ==========================================================================================
def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repeats", type=bounded_int(1, 1000, "runs per figure"), default=3,
                   help="runs per figure; medians (default: 3)")
    p.add_argument("--limit", type=bounded_int(1, 60_000, "MNIST has 60,000 training images"), default=None,
                   help="training images per epoch (default: all 60,000; --quick: 2,048)")
    p.add_argument("--test-limit", type=bounded_int(1, 10_000, "MNIST has 10,000 test images"), default=None,
                   help="test images for inference (default: all 10,000; --quick: 1,000)")
    p.add_argument("--quick", action="store_true", help="a short smoke run: 1 repeat, --limit 2048, few layers")
    p.add_argument("--threads", type=thread_count, default=os.cpu_count() or 1,
                   help="threads per framework, at most the machine's cores (default: %(default)s)")
    p.add_argument("--markdown", metavar="PATH", help="write the results as markdown to PATH")
    p.add_argument("--impl", action="append", choices=("naive", "im2col", "fast"),
                   help="time cnnlab's implementation ladder instead (repeat: --impl naive --impl fast)")


def _run(args, command: str | None = None) -> int:
    if args.markdown:  # before the long part: a benchmark must not be lost to a typo in a path
        from cnnlab._checks import check_writable_folder

        check_writable_folder(args.markdown, "cannot write --markdown")
        if os.path.isdir(args.markdown):
            raise IsADirectoryError(f"cannot write --markdown {args.markdown}: it is a folder; name a file")
    if args.impl:
        results = run_ladder(tuple(dict.fromkeys(args.impl)), args.repeats, log=lambda s: print(s, file=sys.stderr))
        print(format_ladder(results))
        return 0
    try:
        import torch  # noqa: F401  (only to fail early, with the fix)
    except ModuleNotFoundError:
        raise ValueError("cnnlab bench compares with PyTorch, which is not installed: pip install torch "
                         "(or time the implementations alone with --impl naive --impl im2col --impl fast)") from None
    cfg = BenchConfig(repeats=args.repeats, threads=args.threads)
    if args.quick:
        cfg.repeats, cfg.limit, cfg.test_limit, cfg.layer_iters = 1, 2048, 1000, 5
        cfg.layers = ("conv2 32->64 3x3 @14", "maxpool 2 @32x28x28", "conv2+relu+pool fused")
    cfg.limit = args.limit or cfg.limit
    cfg.test_limit = args.test_limit or cfg.test_limit
    result = run_vs_torch(cfg, log=lambda s: print(s, file=sys.stderr, flush=True))
    print(format_table(result))
    if args.markdown:
        if command is None:  # ``cnnlab ... bench OPTIONS``: the options as typed
            argv = sys.argv[sys.argv.index("bench") + 1:] if "bench" in sys.argv else []
            command = " ".join(["cnnlab bench", *argv])
        ladder = run_ladder(repeats=args.repeats)
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(to_markdown(result, command, ladder, NOTES))
    return 0


def add_commands(subparsers) -> None:
    """Add ``bench`` to the ``cnnlab`` sub-command parsers."""
    p = subparsers.add_parser(
        "bench", help="time cnnlab beside PyTorch (or its implementation ladder)",
        description=textwrap.fill(
            "Time cnnlab beside PyTorch on the CPU: full training epochs of simple_cnn on MNIST (batch 64 and 128, "
            "SGD+momentum and Adam), inference on the 10,000 test images, every layer type forward and backward, "
            "and peak memory; two worker processes, interleaved; medians and ratios. With --impl: cnnlab's "
            "implementation ladder alone.", 79),
        epilog="examples:\n  cnnlab bench --repeats 3 --markdown BENCHMARKS.md   (about 15 minutes on 2 cores)\n"
               "  cnnlab bench --quick\n  cnnlab bench --impl naive --impl im2col --impl fast",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _configure(p)
    p.set_defaults(func=_run)


def main(argv=None) -> int:
    """``python benchmarks/bench_vs_torch.py``: the same as ``cnnlab bench``."""
    parser = argparse.ArgumentParser(prog="bench_vs_torch", description="cnnlab beside PyTorch on the CPU.")
    _configure(parser)
    argv = sys.argv[1:] if argv is None else list(argv)
    return _run(parser.parse_args(argv), " ".join(["python benchmarks/bench_vs_torch.py", *argv]))
