"""The vs-PyTorch run: two worker processes, one per framework, interleaved (see ``cnnlab.bench``)."""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import subprocess
import time

from cnnlab.bench.flops import (FLOPS_FWD, FLOPS_TRAIN, LAYERS, OPTIMIZERS, layer_flops, rgb_block_flops,
                                rgb_block_iters, rgb_block_name)
from cnnlab.bench.results import BenchConfig, BenchResult, Row
from cnnlab.bench.runners import worker

__all__ = ["Workers", "machine_info", "run_vs_torch"]


class Workers:
    """The two worker processes (spawned: fresh interpreters, one framework each)."""

    def __init__(self, threads: int):
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
                proc = ctx.Process(target=worker, args=(framework, threads, child), daemon=True)
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


def machine_info() -> dict:
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
    """Run the interleaved benchmark and return its rows (see ``cnnlab.bench``).

    One function on purpose: the order of the timings (A B, then B A, per row, per repeat) is
    the method, and reads best in one place.

    Args:
        cfg: the settings (defaults: full epochs, 3 repeats).
        log: ``log(text)`` for progress lines, or None.
    """
    cfg = cfg or BenchConfig()
    say = log or (lambda text: None)
    t_start = time.perf_counter()
    load_before = os.getloadavg()
    rows: list[Row] = []
    loads = [load_before[0]]
    infos: dict = {}

    def both(workers: Workers, row: Row, method: str, rep: int, **kwargs):
        order = ("cnnlab", "torch") if rep % 2 == 0 else ("torch", "cnnlab")
        for framework in order:
            time.sleep(cfg.gap)
            getattr(row, framework).append(workers.call(framework, method, **kwargs))
        loads.append(os.getloadavg()[0])

    workers = Workers(cfg.threads)
    try:
        infos = {**workers.info["cnnlab"], **workers.info["torch"]}
        main_parts = [p for p in cfg.parts if p != "rgb"]
        if main_parts:
            for framework in ("cnnlab", "torch"):
                workers.call(framework, "load", limit=cfg.limit, test_limit=cfg.test_limit)
            warm = {f: workers.call(f, "warmup") for f in ("cnnlab", "torch")}
            say(f"warm-up (first calls, Numba kernels compiled or loaded): cnnlab {warm['cnnlab']:.1f} s, "
                f"torch {warm['torch']:.1f} s")
        peak = workers.call("cnnlab", "matmul_peak")
        say(f"float32 matmul peak (2048x2048, cnnlab worker): {peak:.1f} GFLOP/s")
        rss = None

        # ---- training epochs
        if "train" in cfg.parts:
            train = []
            for batch in cfg.batch_sizes:
                for opt in cfg.optimizers:
                    doctors = (True, False) if cfg.doctor_off and batch == cfg.batch_sizes[0] else (True,)
                    for doctor in doctors:
                        name = (f"epoch b{batch} {OPTIMIZERS[opt][0]}" + ("" if doctor else " (cnnlab doctor off)"))
                        train.append((Row("train", name, flops=FLOPS_TRAIN * cfg.limit, images=cfg.limit),
                                      dict(batch=batch, opt=opt, doctor=doctor)))
            for rep in range(cfg.repeats):
                for row, kw in train:
                    both(workers, row, "epoch", rep, seed=rep, **kw)
                    say(f"[{rep + 1}/{cfg.repeats}] {row.name}: cnnlab {row.cnnlab[-1]:.2f} s, "
                        f"torch {row.torch[-1]:.2f} s  (load {os.getloadavg()[0]:.2f})")
            rows += [row for row, _ in train]
            rss = Row("memory", f"peak RSS after training (MB, {cfg.limit:,} images)")
            for framework in ("cnnlab", "torch"):
                getattr(rss, framework).append(workers.call(framework, "rss"))

        # ---- inference
        if "inference" in cfg.parts:
            inf = Row("inference", f"predict {cfg.test_limit:,} test images (batch {cfg.infer_batch})",
                      flops=FLOPS_FWD * cfg.test_limit, images=cfg.test_limit)
            for rep in range(cfg.repeats):
                both(workers, inf, "infer", rep, batch=cfg.infer_batch)
            say(f"{inf.name}: cnnlab {inf.a:.3f} s, torch {inf.b:.3f} s")
            rows.append(inf)

        # ---- layers
        if "layers" in cfg.parts:
            names = list(LAYERS) if cfg.layers is None else list(cfg.layers)
            for name in names:
                kind, s, shape = LAYERS[name]
                row = Row("layer", name, flops=layer_flops(kind, s, shape, cfg.layer_batch))
                for rep in range(cfg.repeats):
                    both(workers, row, "layer", rep, name=name, batch=cfg.layer_batch, iters=cfg.layer_iters)
                say(f"{name}: cnnlab {row.a * 1e3:.3f} ms, torch {row.b * 1e3:.3f} ms")
                rows.append(row)
        if rss is not None:
            rows.append(rss)
    finally:
        workers.close()

    # ---- the RGB block: a fresh pair of workers per size, so that each peak RSS is the block's own
    if "rgb" in cfg.parts:
        for size in cfg.rgb_sizes:
            row = Row("rgb", rgb_block_name(size), flops=rgb_block_flops(size, cfg.rgb_batch))
            mem = Row("memory", f"peak RSS, {rgb_block_name(size)} (MB)")
            pair = Workers(cfg.threads)
            try:
                for rep in range(cfg.repeats):
                    both(pair, row, "rgb_block", rep, size=size, batch=cfg.rgb_batch, iters=rgb_block_iters(size))
                for framework in ("cnnlab", "torch"):
                    getattr(mem, framework).append(pair.call(framework, "rss"))
            finally:
                pair.close()
            say(f"{row.name}: cnnlab {row.a * 1e3:.1f} ms, torch {row.b * 1e3:.1f} ms; peak RSS {mem.a:.0f} / "
                f"{mem.b:.0f} MB")
            rows += [row, mem]
    machine = dict(machine_info(), **infos)
    return BenchResult(rows, cfg, machine, peak, load_before, os.getloadavg(), time.perf_counter() - t_start,
                       max(loads))
