"""The two sides of ``cnnlab bench``, each run in its own worker process: cnnlab as users run it,
and PyTorch as a plain idiomatic loop (``torch`` is imported only in its own worker)."""
from __future__ import annotations

import platform
import resource
import statistics
import time
import traceback

import numpy as np

from cnnlab import layers as L
from cnnlab.bench.flops import LAYERS, OPTIMIZERS, RGB_BATCH
from cnnlab.datasets import add_channel_axis, load_mnist, to_float
from cnnlab.engines import runtime as backend
from cnnlab.models.fusion import ConvReLUMaxPool
from cnnlab.models.sequential import Sequential
from cnnlab.models.zoo import simple_cnn
from cnnlab.training.optim import get_optimizer

__all__ = ["CnnlabRunner", "TorchRunner", "worker", "peak_rss_mb", "median_call"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def median_call(fn, iters: int, warmup: int = 3) -> float:
    """Median seconds of ``fn()`` over ``iters`` calls after ``warmup`` warm-up calls (results
    kept alive until the next call, as in a training loop)."""
    keep = None
    for _ in range(warmup):
        keep = fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        keep = fn()
        times.append(time.perf_counter() - t)
    del keep
    return statistics.median(times)


def _load_data(limit: int, test_limit: int):
    (xtr, ytr), (xte, yte) = load_mnist()
    prep = lambda a: add_channel_axis(to_float(a))  # noqa: E731  (N, 28, 28) uint8 -> (N, 1, 28, 28) float32
    reps = -(-limit // len(xtr))  # --limit above 60,000 repeats the data
    xtr, ytr = np.concatenate([xtr] * reps)[:limit], np.concatenate([ytr] * reps)[:limit]
    return prep(xtr), ytr.astype(np.int64), prep(xte[:test_limit]), yte[:test_limit].astype(np.int64)


class CnnlabRunner:
    """The cnnlab side: everything as a user runs it."""

    def __init__(self, threads: int):
        self.data = None

    def load(self, limit, test_limit):
        self.data = _load_data(limit, test_limit)
        return peak_rss_mb()

    def warmup(self):
        # compiles (or loads from the disk cache) the Numba kernels once, before any timing
        t = time.perf_counter()
        x, y = self.data[0][:256], self.data[1][:256]
        for opt in OPTIMIZERS:
            self.epoch(64, opt, True, 0, n=len(x))
        self._infer_batches(x, 64)
        return time.perf_counter() - t

    def _model(self, opt):
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
        model = simple_cnn(seed=0)
        t = time.perf_counter()
        model.predict(x, batch_size=batch)
        return time.perf_counter() - t

    def infer(self, batch):
        return self._infer_batches(self.data[2], batch)

    def layer(self, name, batch, iters):
        kind, s, shape = LAYERS[name]
        rng = np.random.default_rng(0)
        if kind == "optim":
            params = simple_cnn(seed=0).parameters()
            for p in params:
                p.grad = rng.standard_normal(p.shape, dtype=np.float32)
            opt = get_optimizer(s["opt"], **OPTIMIZERS[s["opt"]][1])
            opt.set_parameters(params)
            return median_call(opt.step, iters)
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
        return median_call(step, iters)

    def rgb_block(self, size, batch=RGB_BATCH, iters=5):
        """Forward + backward of the plain RGB block (``flops.RGB_SIZES``) through ``Sequential``."""
        rng = np.random.default_rng(0)
        model = Sequential([L.Conv2d(3, 64, 3, padding=1, rng=0), L.ReLU(), L.Conv2d(64, 64, 3, padding=1, rng=1),
                            L.ReLU(), L.MaxPool2d(2)])
        x = rng.standard_normal((batch, 3, size, size), dtype=np.float32)
        dout = rng.standard_normal(model.forward(x, training=True).shape, dtype=np.float32)

        def step():
            model.forward(x, training=True)
            model.backward(dout, need_input_grad=False)
            return model.layers[0].weight.grad
        return median_call(step, iters, warmup=2 if size <= 64 else 1)  # oneDNN's first calls are slow

    def matmul_peak(self):
        a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
        out = np.empty_like(a)
        return 2 * 2048**3 / median_call(lambda: np.matmul(a, a, out=out), 10) / 1e9

    def rss(self):
        return peak_rss_mb()

    def info(self):
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


class TorchRunner:
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
        return peak_rss_mb()

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
        kind, s, shape = LAYERS[name]
        rng = np.random.default_rng(0)
        if kind == "optim":
            params = list(self._net().parameters())
            for p in params:
                p.grad = torch.from_numpy(rng.standard_normal(tuple(p.shape), dtype=np.float32))
            cls = torch.optim.SGD if s["opt"] == "sgd" else torch.optim.Adam
            optimizer = cls(params, **OPTIMIZERS[s["opt"]][1])
            return median_call(optimizer.step, iters)
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
        return median_call(step, iters)

    def rgb_block(self, size, batch=RGB_BATCH, iters=5):
        torch = self.torch
        nn = torch.nn
        torch.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                            nn.MaxPool2d(2))
        rng = np.random.default_rng(0)
        x = torch.from_numpy(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
        dout = torch.from_numpy(rng.standard_normal(tuple(net(x).shape), dtype=np.float32))
        params = list(net.parameters())

        def step():
            for p in params:
                p.grad = None
            net(x).backward(dout)
            return params[0].grad
        return median_call(step, iters, warmup=2 if size <= 64 else 1)  # oneDNN's first calls are slow

    def rss(self):
        return peak_rss_mb()

    def info(self):
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads()}


def worker(framework: str, threads: int, conn) -> None:
    """A worker process: builds its runner, then answers ``(method, kwargs)`` messages until None."""
    try:
        runner = (TorchRunner if framework == "torch" else CnnlabRunner)(threads)
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
