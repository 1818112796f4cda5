"""The default engine (``"numba"`` or ``"numpy"``: what ``impl="fast"`` means) and the Numba runtime.

Matrix products always go to NumPy's BLAS (``@``). The copies, adds and comparisons around
them (im2col/col2im, bias, ReLU, max pooling and their backward passes) are what NumPy runs
one pass at a time on ONE core; with Numba they run as compiled loops on every core, several
steps fused into one pass over memory (see ``cnnlab/engines/numba_kernels.py``). Both engines
compute the same numbers (the tests run the op suites under each and against PyTorch).

This module is the ONE place that decides:

* ``HAVE_NUMBA``: Numba imports, and ``CNNLAB_NO_NUMBA`` is not set to a true value
  (``CNNLAB_NO_NUMBA=1 python ...`` forces the pure-NumPy path).
* :func:`use_numba` / :func:`kernels`: what the ops ask at call time.
* :func:`set_backend` / :func:`backend`: switch for a block of code (tests, benchmarks).

Threads: the kernels and NumPy's BLAS take turns on the same cores, many times per training
step, so starting a parallel kernel or product must be cheap, and no thread may keep spinning
on a core another pool needs (all measured on 2 cores, simple_cnn, batch 64):

* one pool: OpenBLAS 0.3.27+ (NumPy's wheels carry it) runs its products' jobs on the
  kernels' OpenMP threads (``cnnlab.engines.blas_threads``), so those threads may spin
  ``GOMP_SPINCOUNT=30000`` (~0.3-1 ms) after each kernel or product and the next one starts
  in ~4 us instead of waking a sleeping core: 30-160 us in a virtual machine, where an idle
  core halts. Measured on 2 vCPUs (BENCHMARKS.md, round four): epochs 2-21% faster (median
  10%) in eight A/B pairs; inside ``cnnlab bench``, which pauses before each timing, the ReLU
  and batch-norm rows 2.6-5.9x faster. ``CNNLAB_KEEP_OPENBLAS=1`` leaves OpenBLAS its own threads;
* two pools (an OpenBLAS without the hook, or that setting): the kernels' workers spin only
  ``GOMP_SPINCOUNT=1000`` (about 25 us) and sleep before the next GEMM needs the cores
  (16.4 ms per step against 30.7 ms with OpenMP's default spin, where the workers fight
  OpenBLAS, and 21.3 ms with Numba's ``workqueue`` layer, 50-80 us per start); and OpenBLAS's
  workers, which spin ~0.1 s after every product (1 << 28 cycles, so one core is never free
  for the kernels: 20-35% slower steps), sleep at once: :func:`calm_openblas` (run either way), OpenBLAS's own
  ``OPENBLAS_THREAD_TIMEOUT=4``, unless that is already set or ``CNNLAB_KEEP_OPENBLAS=1``;
* the spin is set for Numba's libgomp only, while it loads, then removed from the
  environment. Without OpenMP, Numba falls back to TBB or workqueue, and OpenBLAS keeps its
  threads. ``NUMBA_THREADING_LAYER`` and ``GOMP_SPINCOUNT`` / ``OMP_WAIT_POLICY``, when set, win;
* glibc hands a freed array of megabytes back to the kernel at once, so the next step's
  array faults in page by page (768 faults and 1.1 ms per batch-norm step measured):
  :func:`keep_freed_memory` keeps those pages mapped for reuse; it runs when the kernels
  are first loaded, unless ``MALLOC_*_`` settings are in the environment or ``CNNLAB_KEEP_MALLOC=1``;
* GNU OpenMP cannot be used again in a process forked after it started (it would abort), so
  a child forked from a process that ran the kernels uses the NumPy backend (same numbers,
  slower) and OpenBLAS's own threads; ``multiprocessing`` with the ``"spawn"`` start method
  keeps the kernels;
* calls into the kernels take one process-wide lock (uncontended: ~0.1 us), so two Python
  threads never run two 2-thread kernels on 2 cores at once.

Example:
    >>> from cnnlab.engines import runtime as backend
    >>> backend.get_backend() in ("numba", "numpy")
    True
    >>> with backend.backend("numpy"):
    ...     backend.use_numba()
    False
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import os
import threading

import time
from pathlib import Path

import numpy as np

__all__ = ["HAVE_NUMBA", "BACKENDS", "use_numba", "require_numba", "kernels", "get_backend", "set_backend",
           "backend", "threading_layer", "calm_openblas", "loaded_openblas", "keep_freed_memory", "release_freed_memory", "kernel_cache_files",
           "cold_kernels", "warmup", "WARMUP_NOTICE"]

#: backend names accepted by :func:`set_backend`
BACKENDS = ("numba", "numpy")


def _env_disables_numba() -> bool:
    return os.environ.get("CNNLAB_NO_NUMBA", "").strip().lower() not in ("", "0", "false", "no")


# find_spec, not import: importing numba costs ~0.3 s and ~40 MB, paid only when a kernel is first used
HAVE_NUMBA: bool = not _env_disables_numba() and importlib.util.find_spec("numba") is not None

_state = {"numba": HAVE_NUMBA}
_kernels = None


def use_numba() -> bool:
    """Whether the ops should call the Numba kernels now."""
    return _state["numba"]


_lock = threading.Lock()


class _Kernels:
    """The kernels of ``cnnlab.engines.numba_kernels``, each called under one process-wide lock."""

    def __init__(self, module):
        for name in module.__all__:
            setattr(self, name, self._locked(getattr(module, name)))

    @staticmethod
    def _locked(kernel):
        @functools.wraps(kernel)
        def call(*args):
            with _lock:
                return kernel(*args)
        call.kernel = kernel
        return call


#: Numba threading layers, best first (see the module docstring)
LAYER_PRIORITY = ["omp", "tbb", "workqueue"]
#: GNU OpenMP spin count of the kernels' workers (iterations of ~25 ns before they sleep): short
#: while OpenBLAS has its own threads, long when its products run on the kernels' threads too
GOMP_SPIN, GOMP_SPIN_ONE_POOL = "1000", "30000"
_forked_from_omp = False


def kernels():
    """The compiled kernels (``cnnlab.engines.numba_kernels``, imported and started on first use)."""
    global _kernels
    if _kernels is None:
        import numba  # optional and heavy (~0.3 s, ~40 MB): loaded with the first kernel

        if "NUMBA_THREADING_LAYER" not in os.environ:
            numba.config.THREADING_LAYER_PRIORITY = list(LAYER_PRIORITY)
        from cnnlab.engines import blas_threads
        from cnnlab.engines import numba_kernels as _numba_kernels

        openblas = loaded_openblas()  # NumPy loaded it at import
        one_pool = not _env_true("CNNLAB_KEEP_OPENBLAS") and bool(blas_threads.hookable_libraries(openblas))
        # libgomp reads its settings once, when it loads: at the first parallel kernel
        own_spin = "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
        if own_spin:
            os.environ["GOMP_SPINCOUNT"] = GOMP_SPIN_ONE_POOL if one_pool else GOMP_SPIN
        try:
            _numba_kernels.warm_up(np.empty(4, dtype=np.int64))
        finally:
            if own_spin:
                del os.environ["GOMP_SPINCOUNT"]  # other OpenMP libraries loaded later keep their defaults
        if not _env_true("CNNLAB_KEEP_OPENBLAS"):
            calm_openblas()
        if one_pool and numba.threading_layer() == "omp":
            blas_threads.share(openblas)
        if not _env_true("CNNLAB_KEEP_MALLOC"):
            keep_freed_memory()
        if numba.threading_layer() == "omp" and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
        _kernels = _Kernels(_numba_kernels)
    return _kernels


def _after_fork_in_child() -> None:
    """GNU OpenMP aborts a forked child that starts a parallel region: use NumPy there, and
    give OpenBLAS its own threads back."""
    global _forked_from_omp
    _forked_from_omp = True
    _state["numba"] = False
    from cnnlab.engines import blas_threads  # imported by kernels() already

    blas_threads.release()


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


_calmed: list[str] = []


def loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (Linux; empty elsewhere)."""
    if not os.path.exists("/proc/self/maps"):
        return []
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        return sorted({line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line})


def calm_openblas(timeout: int = 4) -> list[str]:
    """Make the OpenBLAS threads of NumPy sleep right after each matrix product.

    Sets ``OPENBLAS_THREAD_TIMEOUT`` (spin ``2**timeout`` cycles, OpenBLAS's minimum is 4),
    has each loaded OpenBLAS re-read its environment (``openblas_read_env``) and restarts its
    thread pool (``blas_thread_shutdown_``: the next product starts it again with the new
    setting, ~20 ms once). Matrix products keep their speed. Does nothing when the variable is
    already set (OpenBLAS read it at import), off Linux, off the main thread, for other BLAS
    libraries, or a second time. Not thread-safe against BLAS calls running in other threads
    at that moment: it runs once, when the first kernel is loaded.

    Returns:
        the paths of the libraries it reconfigured (empty when it did nothing).
    """
    if _calmed or "OPENBLAS_THREAD_TIMEOUT" in os.environ or threading.current_thread() is not threading.main_thread():
        return list(_calmed)
    libs = []
    for path in loaded_openblas():
        try:
            lib = ctypes.CDLL(path)  # already loaded: the same handle
            libs.append((path, lib.openblas_read_env, lib.blas_thread_shutdown_))
        except (OSError, AttributeError):
            continue
    if not libs:
        return []
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(int(timeout))
    for path, read_env, shutdown in libs:
        read_env()
        shutdown()
        _calmed.append(path)
    return list(_calmed)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: glibc malloc settings while the kernels run: arrays up to 64 MB come from the heap (not
#: fresh mmap pages), and up to 256 MB of freed heap stays mapped before it is returned
MALLOC_SETTINGS = {_M_MMAP_THRESHOLD: 64 << 20, _M_TRIM_THRESHOLD: 256 << 20, _M_TOP_PAD: 16 << 20}
_malloc_kept: list[bool] = []


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed arrays' pages for the next step instead of returning them.

    Why: a training step frees and allocates the same arrays (megabytes each) every few
    milliseconds. glibc hands large blocks back to the kernel (``munmap``, or trimming the
    heap's top) as soon as they are freed, so the next step's array is fresh memory and
    every 4 KB page of it faults when first written. Measured (2 cores, BatchNorm2d(16) on
    (64, 16, 28, 28), forward + backward): 768 page faults per step and a 1.94 ms forward by
    default; none and 0.81 ms with these settings (:data:`MALLOC_SETTINGS`), which keep the
    pages mapped for reuse. The price is peak memory where arrays of tens of megabytes come
    and go: +3 MB over a simple_cnn training run, +46 MB (10%) for a 3->64->64 block on
    16 RGB images of 128 px (``benchmarks/ab_rows.py --env keepoff=CNNLAB_KEEP_MALLOC=1``).

    What was freed before training (loading data) is handed back when ``fit`` starts
    (:func:`release_freed_memory`). Does nothing off glibc, when ``MALLOC_MMAP_THRESHOLD_``/
    ``MALLOC_TRIM_THRESHOLD_``/``MALLOC_TOP_PAD_`` are set (the user chose), or a second
    time. Runs when the kernels are first loaded, unless ``CNNLAB_KEEP_MALLOC=1``.

    Returns:
        whether the settings were applied (now or earlier).
    """
    if _malloc_kept:
        return _malloc_kept[0]
    chosen = any(f"MALLOC_{name}_" in os.environ for name in ("MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD"))
    applied = False
    if not chosen:
        try:
            libc = ctypes.CDLL(None)
            applied = hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version")
            if applied:
                applied = all(libc.mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items())
        except OSError:
            applied = False
    _malloc_kept.append(applied)
    return applied


def release_freed_memory() -> bool:
    """Hand back to the kernel the freed memory that :func:`keep_freed_memory` made malloc keep.

    Why: the settings pay inside a training loop, whose steps reuse the kept pages; what was
    freed before it (the temporaries of loading and converting a dataset: 95 MB for MNIST
    loaded as ``cnnlab bench`` does) only inflates the process. ``fit`` calls this once
    before its first step: measured, a process that loaded MNIST after the kernels started
    went from 448 to 377 MB resident, and trained at batch 128 with a peak of 436 MB instead of 458.

    Returns:
        whether anything was asked of malloc (glibc, with the settings applied).
    """
    if not (_malloc_kept and _malloc_kept[0]):
        return False
    ctypes.CDLL(None).malloc_trim(0)
    return True


def threading_layer() -> str:
    """The Numba threading layer the kernels run on (``"none"`` without Numba)."""
    if not HAVE_NUMBA:
        return "none"
    kernels()
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet: the configured one
        return str(numba.config.THREADING_LAYER)


# ----- warm-up: compile every kernel once, outside any progress bar ----------------------------------
WARMUP_NOTICE = "compiling the fast kernels once, about a minute; cached for next time"


def kernel_cache_files() -> dict:
    """Where Numba keeps each kernel's on-disk cache index (``cache=True``): name -> Path.

    The index exists once the kernel was compiled for some signature on this machine (in
    ``NUMBA_CACHE_DIR`` when set, else beside ``numba_kernels.py``). Empty without Numba.
    """
    if not HAVE_NUMBA:
        return {}
    from cnnlab.engines import numba_kernels as _numba_kernels  # imports numba; defines the dispatchers, compiles nothing

    files = {}
    for name in _numba_kernels.__all__:
        cache = getattr(getattr(_numba_kernels, name), "_cache", None)
        index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)  # numba.core.caching
        if index:
            files[name] = Path(index)
    return files


def cold_kernels() -> list[str]:
    """Names of the kernels with no compiled code on disk yet: the next run compiles them
    (0.3-3 s each). Empty when warm, or when the NumPy backend is in use."""
    if not use_numba():
        return []
    return sorted(name for name, path in kernel_cache_files().items() if not path.is_file())


def warmup(workload, say=print) -> float:
    """Compile (or load from the disk cache) the kernels that ``workload()`` calls, with a
    message before and the time after; returns the seconds it took.

    ``workload`` is a small run of the real code paths (``cnnlab.training.warmup.workload``: one
    tiny training step and a prediction per zoo model), so exactly the signatures that
    training and the lab use get compiled. Numba compiles per argument types, not shapes,
    so a batch of a few images compiles what a batch of 64 needs.
    """
    if not use_numba():
        say("the NumPy backend is in use (Numba missing or CNNLAB_NO_NUMBA set): nothing to compile")
        return 0.0
    cold = cold_kernels()
    say(WARMUP_NOTICE if cold else "loading the fast kernels from the disk cache")
    t0 = time.perf_counter()
    kernels()
    workload()
    seconds = time.perf_counter() - t0
    still = cold_kernels()
    where = next(iter(kernel_cache_files().values())).parent
    say(f"kernels ready in {seconds:.1f} s ({len(cold)} compiled, cached in {where})"
        + (f"; not used by the warm-up: {', '.join(still)}" if still else ""))
    return seconds


def get_backend() -> str:
    """``"numba"`` or ``"numpy"``: the engine the ops use now."""
    return "numba" if _state["numba"] else "numpy"


def require_numba() -> None:
    """Raise ValueError saying why the Numba engine cannot run here, if it cannot."""
    if not HAVE_NUMBA or _forked_from_omp:
        why = "CNNLAB_NO_NUMBA is set" if _env_disables_numba() else "numba is not installed (pip install numba)"
        if _forked_from_omp:
            why = ("this process was forked from one that ran the kernels on GNU OpenMP, which cannot run again "
                   "after a fork; start worker processes with multiprocessing's 'spawn' method")
        raise ValueError(f"backend 'numba' is not available: {why}.")


def set_backend(name: str) -> str:
    """Choose the engine for the memory-bound parts of the ops; returns the previous name.

    Raises:
        ValueError: an unknown name, or ``"numba"`` when Numba is missing or disabled by
            ``CNNLAB_NO_NUMBA``.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(map(repr, BACKENDS))}.")
    if name == "numba":
        require_numba()
    previous = get_backend()
    _state["numba"] = name == "numba"
    return previous


@contextlib.contextmanager
def backend(name: str):
    """Run a block with the given backend, then restore the previous one."""
    previous = set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)
